//! Small value types every part of the client shares.

use std::fmt;
use std::sync::Arc;

/// A topic name and a partition number. Cloning is cheap (the name is an `Arc<str>`).
///
/// ```
/// let tp = weir::TopicPartition::new("events", 3);
/// assert_eq!(tp.to_string(), "events-3");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: Arc<str>,
    /// The partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// Builds a `TopicPartition`.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
