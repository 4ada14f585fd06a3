//! Giving idle coroutine-stack pages back to the OS.
//!
//! A request's deepest moment (parsing, encoding, the upstream client's connect-and-send path,
//! a TLS handshake) touches about 40–50 KiB of its coroutine's stack in a release build. A stream then waits for minutes in a much
//! shallower read loop while those pages stay resident: with a thousand open streams that is
//! most of the process's memory. [`StackMark::release_below`] returns the pages between the
//! current frame and the deepest point the stack could have reached; touching them again just
//! faults in zero pages. Owns nothing; must only be called from the coroutine that took the
//! mark.

/// Bytes kept below the current frame: the libc wrapper and the syscall entry run there.
const MARGIN: usize = 2 * 1024;
/// Bytes at the bottom of the stack never released: the generator's usage sentinel lives there,
/// and the mark is a little below the true top of the stack.
const BOTTOM_RESERVE: usize = 32 * 1024;
const PAGE: usize = 4096;

/// The address of a frame near the top of a coroutine's stack.
#[derive(Clone, Copy)]
pub struct StackMark(usize);

impl StackMark {
    /// Takes the mark in the outermost frame of the coroutine (the connection's entry point).
    #[inline(always)]
    pub fn here() -> StackMark {
        let probe = 0u8;
        StackMark(std::hint::black_box(&probe) as *const u8 as usize)
    }

    /// Releases the pages below the caller's frame down to the deepest the stack could reach.
    /// A no-op outside a coroutine or with stacks too small to be worth it.
    #[inline(never)]
    pub fn release_below(&self) {
        if !may::coroutine::is_coroutine() {
            return;
        }
        let stack = may::config().get_stack_size() * std::mem::size_of::<usize>();
        if stack <= 2 * BOTTOM_RESERVE {
            return;
        }
        let here = StackMark::here().0;
        let Some(lowest) = self.0.checked_sub(stack - BOTTOM_RESERVE) else {
            return;
        };
        let lo = lowest.next_multiple_of(PAGE);
        let hi = here.saturating_sub(MARGIN) & !(PAGE - 1);
        if hi <= lo || here > self.0 {
            return;
        }
        // SAFETY: [lo, hi) lies inside this coroutine's own stack mapping (between its bottom
        // reserve and a margin below the current frame), where no live frame exists; after
        // MADV_DONTNEED a later call that grows the stack there reads fresh zero pages.
        unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_DONTNEED) };
    }
}
