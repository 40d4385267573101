//! The process's resident memory, from `/proc/self/status` (Linux; `None` elsewhere).

fn status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resident memory now (VmRSS), in MiB.
pub fn rss_mb() -> Option<f64> {
    status_mb("VmRSS:")
}

/// Peak resident memory (VmHWM), in MiB.
pub fn peak_rss_mb() -> Option<f64> {
    status_mb("VmHWM:")
}
