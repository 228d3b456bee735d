//! `weir consume` (waiting for weir's consumer to land).

use crate::util::CliError;
use crate::{ConsumeArgs, Global};

pub const AFTER_HELP: &str = "";

pub async fn run(_g: &Global, _a: ConsumeArgs) -> Result<(), CliError> {
    Err(CliError::Failed(
        "consume is not available in this build yet".into(),
    ))
}
