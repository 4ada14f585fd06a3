//! The process allocator: mimalloc for everything ordinary, and the operating system directly
//! for large blocks.
//!
//! A large request (a base64 image, a long conversation) briefly needs a few blocks of
//! megabytes: the body, its parsed form, a translation. mimalloc keeps freed memory for reuse
//! and returns it only when the thread that owns it allocates again, so a burst of large
//! requests used to leave the server at its peak long after the clients left (measured: 47 MiB
//! held after one 8 MiB request, against 6 MiB before it). Blocks of [`LARGE`] or more are
//! therefore mapped and unmapped with `mmap`, grown in place with `mremap`, and given back the
//! moment they are freed. Requests of ordinary size never reach that path.
//!
//! Owns nothing else; must not log or allocate itself.

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc;

/// From this size on, a block comes straight from the kernel.
pub const LARGE: usize = 1024 * 1024;
/// `mmap` hands out page-aligned memory; larger alignments stay with mimalloc.
const PAGE_ALIGN: usize = 4096;

pub struct EdgeAlloc;

// mimalloc's own option interface; `mi_option_purge_delay` has been option 15 since mimalloc
// 2.0 (the enum in mimalloc.h is append-only) and is read again at every purge.
unsafe extern "C" {
    fn mi_option_set(option: libc::c_int, value: libc::c_long);
}
const MI_OPTION_PURGE_DELAY: libc::c_int = 15;

/// Makes mimalloc give pages it no longer uses back to the OS as they empty, instead of a
/// second later. A delayed purge only runs when the owning thread allocates again, so a server
/// that goes quiet after a busy spell kept its peak resident (measured: ~0.7 MiB of ~5 MiB
/// anonymous after 30 000 requests at concurrency 32). Empty pages are first kept per size
/// class for reuse, so under steady load this costs about one `madvise` per hundred requests.
/// `MIMALLOC_PURGE_DELAY` in the environment still wins. Call before the first thread starts.
pub fn purge_promptly() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option; mimalloc reads options without locks by design.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

fn is_large(layout: &Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= PAGE_ALIGN
}

fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with no address hint touches no existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

// SAFETY: every block is handed out once and freed by the path that made it: `is_large` of the
// layout the caller passes back (the same layout, as `GlobalAlloc` requires) picks the path.
unsafe impl GlobalAlloc for EdgeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            return map(layout.size());
        }
        // SAFETY: forwarded with the caller's guarantees (non-zero size).
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            // Fresh anonymous mappings are zero-filled.
            return map(layout.size());
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(&layout) {
            // SAFETY: `ptr` came from `map` with this size (same layout), and is not used again.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
            return;
        }
        // SAFETY: `ptr` came from mimalloc with this layout.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` is non-zero and fits `layout.align()`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (is_large(&layout), is_large(&new_layout)) {
            // SAFETY: `ptr` came from mimalloc with `layout`.
            (false, false) => unsafe { MiMalloc.realloc(ptr, layout, new_size) },
            (true, true) => {
                // SAFETY: `ptr` is a mapping of `layout.size()` bytes made by `map`; mremap
                // keeps its contents and may move it, which the caller expects of realloc.
                let p = unsafe {
                    libc::mremap(ptr.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE)
                };
                if p == libc::MAP_FAILED {
                    std::ptr::null_mut()
                } else {
                    p.cast()
                }
            }
            _ => {
                // Crossing the threshold: a new block on the other path, then a copy.
                // SAFETY: `new_layout` has a non-zero size.
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both blocks are valid for the smaller size and do not overlap;
                    // the old one is freed with the layout it was made with.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" {
        fn mi_option_get(option: libc::c_int) -> libc::c_long;
    }

    #[test]
    fn option_15_is_the_purge_delay_and_is_set_to_zero() {
        // SAFETY: reads and sets an integer option.
        let before = unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) };
        // The documented defaults of the purge delay: 1000 ms in mimalloc 3, 10 ms in 2.
        assert!(before == 1000 || before == 10, "option 15 is {before}");
        purge_promptly();
        // SAFETY: as above.
        assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 0);
    }

    #[test]
    fn blocks_cross_the_threshold_both_ways_with_their_contents() {
        let a = EdgeAlloc;
        let small = Layout::from_size_align(1000, 8).unwrap();
        // SAFETY: each block is used within its size and freed with its final layout.
        unsafe {
            let p = a.alloc(small);
            assert!(!p.is_null());
            for i in 0..1000 {
                *p.add(i) = (i % 251) as u8;
            }
            let big = a.realloc(p, small, 3 * LARGE);
            assert!(!big.is_null());
            assert!((0..1000).all(|i| *big.add(i) == (i % 251) as u8));
            *big.add(3 * LARGE - 1) = 7;
            let big_layout = Layout::from_size_align(3 * LARGE, 8).unwrap();
            let bigger = a.realloc(big, big_layout, 5 * LARGE);
            assert_eq!(*bigger.add(3 * LARGE - 1), 7);
            assert_eq!(*bigger.add(999), (999 % 251) as u8);
            let bigger_layout = Layout::from_size_align(5 * LARGE, 8).unwrap();
            let back = a.realloc(bigger, bigger_layout, 500);
            assert!((0..500).all(|i| *back.add(i) == (i % 251) as u8));
            a.dealloc(back, Layout::from_size_align(500, 8).unwrap());
            let z = a.alloc_zeroed(big_layout);
            assert!((0..3 * LARGE).step_by(4096).all(|i| *z.add(i) == 0));
            a.dealloc(z, big_layout);
        }
    }
}
