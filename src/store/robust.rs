//! LMDB's writer lock is a process-shared robust mutex, so a process killed inside a write
//! transaction (a `keys add` interrupted at the wrong millisecond) leaves a lock that the next
//! writer recovers instead of waiting on forever.
//!
//! musl agrees to make a mutex robust only after asking the kernel (`get_robust_list`);
//! qemu-user never answers, so under emulation LMDB could not open its environment at all.
//! The static builds (`cross/build.sh`) link LMDB's call through this wrapper
//! (`-Wl,--wrap=pthread_mutexattr_setrobust` with `--cfg freellmapi_robust_fallback`): where
//! the kernel cannot do robust mutexes, the mutex is made a plain one instead of failing.
//! Real kernels, the boards' included, get robust mutexes.

use std::ffi::c_int;

unsafe extern "C" {
    /// musl's own `pthread_mutexattr_setrobust` (the linker's name for it under `--wrap`).
    fn __real_pthread_mutexattr_setrobust(
        attr: *mut libc::pthread_mutexattr_t,
        robust: c_int,
    ) -> c_int;
}

/// What LMDB calls instead of `pthread_mutexattr_setrobust`.
///
/// # Safety
/// The caller's contract is the wrapped function's: `attr` is an initialised attribute object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_pthread_mutexattr_setrobust(
    attr: *mut libc::pthread_mutexattr_t,
    robust: c_int,
) -> c_int {
    // SAFETY: forwarded unchanged under the same contract.
    let rc = unsafe { __real_pthread_mutexattr_setrobust(attr, robust) };
    if rc == libc::ENOSYS { 0 } else { rc }
}
