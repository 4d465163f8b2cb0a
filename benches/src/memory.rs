//! Memory measurement for the examples that report bytes per session: [`Counting`], the
//! system allocator counting the bytes held, and [`rss`], the process's resident set. An
//! example installs the allocator with
//! `#[global_allocator] static GLOBAL: Counting = Counting;` and reads [`heap_held`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes held (requested sizes, without the allocator's
/// own overhead), so RSS can be compared with what the program asked for.
pub struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Bytes held through [`Counting`] now (0 unless it is the global allocator).
pub fn heap_held() -> usize {
    HELD.load(Ordering::Relaxed)
}

/// `VmRSS` of this process in bytes.
///
/// # Panics
/// Where `/proc/self/status` is not readable or has no `VmRSS` line (not Linux).
pub fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc is readable");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("/proc/self/status has a VmRSS line");
    kb * 1024
}
