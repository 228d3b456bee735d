//! CPU time and peak resident memory of this process, from `getrusage(RUSAGE_SELF)`.

use std::time::Duration;

/// The process's resource usage at one moment.
#[derive(Debug, Clone, Copy)]
pub struct ResourceUsage {
    /// CPU time in user mode, all threads.
    pub user: Duration,
    /// CPU time in the kernel, all threads.
    pub system: Duration,
    /// Peak resident set size so far, in bytes.
    pub peak_rss_bytes: u64,
}

impl ResourceUsage {
    /// The usage now; zeros if the call fails (it cannot with `RUSAGE_SELF` and a valid pointer).
    pub fn now() -> ResourceUsage {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `usage` points to writable memory the size of a `rusage` (zeroed, so every field is a valid
        // integer even if the call wrote nothing); `RUSAGE_SELF` is a valid `who`. getrusage is the only way to
        // read the process's CPU time and peak RSS without parsing /proc, which the standard library does not wrap.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
        if rc != 0 {
            return ResourceUsage {
                user: Duration::ZERO,
                system: Duration::ZERO,
                peak_rss_bytes: 0,
            };
        }
        // SAFETY: zero-initialised above, then filled by a successful getrusage.
        let usage = unsafe { usage.assume_init() };
        ResourceUsage {
            user: timeval(usage.ru_utime),
            system: timeval(usage.ru_stime),
            // Linux reports ru_maxrss in KiB.
            peak_rss_bytes: (usage.ru_maxrss.max(0) as u64).saturating_mul(1024),
        }
    }

    /// CPU time (user, system) spent since `earlier`.
    pub fn cpu_since(&self, earlier: &ResourceUsage) -> (Duration, Duration) {
        (
            self.user.saturating_sub(earlier.user),
            self.system.saturating_sub(earlier.system),
        )
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.clamp(0, 999_999) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work_and_rss_is_known() {
        let before = ResourceUsage::now();
        // Busy work the optimiser cannot drop.
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let after = ResourceUsage::now();
        let (user, system) = after.cpu_since(&before);
        assert!(user + system > Duration::ZERO);
        assert!(after.peak_rss_bytes > 0);
    }
}
