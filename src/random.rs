//! Random numbers from the kernel, for ids that must not collide: lease ids, run ids, cgroup
//! names. A leaf: it uses nothing else in the crate.

/// 64 random bits from the kernel (getrandom(2)); the clock and pid if that fails.
pub fn u64() -> u64 {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { nix::libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    let r = u64::from_le_bytes(buf);
    if n == buf.len() as isize && r != 0 {
        return r;
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    t ^ (u64::from(std::process::id()) << 32)
}
