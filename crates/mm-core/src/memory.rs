//! One process-wide allocator setting for the CPU path.
//!
//! A training step on Flex allocates and frees the same few hundred buffers every step, many
//! of them a megabyte or more. glibc's `malloc` serves buffers above its `mmap` threshold
//! straight from the kernel and hands them back when they are freed, and trims the heap's top
//! back to the kernel too; so every step asked for the same memory again, and the kernel
//! faulted in and zeroed every page of it once more. On the 2-core Intel Xeon that was about a
//! tenth of a training step (page faults, the kernel's locks around them), measured with
//! `perf` under `cargo xtask bench train-clip` (docs/performance.md, "Sixth session").
//!
//! [`keep_freed_memory`] makes glibc keep what is freed for the next allocation instead.
//! `xtask` (which also runs the service) calls it first thing; a library user decides for
//! themself.

/// Buffers up to this size come from the heap, not from a fresh `mmap` each time.
pub const MMAP_THRESHOLD: usize = 32 << 20;
/// Free memory kept at the heap's top before any is given back.
pub const TRIM_THRESHOLD: usize = 1 << 30;
/// Extra memory asked for whenever the heap grows, so it grows seldom.
pub const TOP_PAD: usize = 64 << 20;

/// Sets glibc's allocator to keep freed memory in the process: no `mmap` for buffers under
/// [`MMAP_THRESHOLD`], trimming only above [`TRIM_THRESHOLD`], growth by [`TOP_PAD`]. Peak
/// memory is unchanged (the same buffers are live at the peak); memory freed after the peak
/// stays with the process until it exits. Returns whether every setting was taken: always
/// `false` off glibc (musl, macOS, Windows), where nothing is changed.
pub fn keep_freed_memory() -> bool {
    set_malloc_options()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_malloc_options() -> bool {
    [
        (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (libc::M_TOP_PAD, TOP_PAD),
    ]
    .into_iter()
    .all(|(option, value)| {
        let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` only reads its two integer arguments and updates glibc's own
        // allocator parameters under its lock; any value is accepted or refused (returning 0).
        unsafe { libc::mallopt(option, value) == 1 }
    })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_malloc_options() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_takes_every_setting_and_allocation_still_works() {
        let taken = keep_freed_memory();
        assert_eq!(taken, cfg!(all(target_os = "linux", target_env = "gnu")));
        // Buffers around the threshold allocate, fill and free as before.
        for len in [1 << 10, (MMAP_THRESHOLD / 4) - 1, MMAP_THRESHOLD / 4 + 1] {
            let v = vec![1.5f32; len];
            assert_eq!(v.iter().filter(|&&x| x == 1.5).count(), len);
        }
    }
}
