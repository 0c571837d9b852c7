//! The process allocator: mimalloc, told to keep the memory it frees.
//!
//! A training step allocates and frees the same large buffers every time (activations, their
//! gradients, the dense 30,522 × 384 word-embedding gradient at 47 MB). glibc returns blocks
//! over 32 MB to the OS at once and trims its heap, so each step faulted those pages in again:
//! a third of a quickstart's time was system time, in page faults and unmapping. mimalloc with
//! purging off hands the freed pages to the next step as they are. The resident set stays at
//! its peak, which a training process reaches on its first step anyway.
//!
//! Declared here, in the library, so every binary that trains (thaw, the bench, the tests)
//! runs on it.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`, the same in mimalloc
/// v2 and v3): milliseconds before freed memory goes back to the OS; -1 never.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// From now on freed memory stays with the process for reuse. Idempotent and cheap; called
/// when a backend's device is first asked for.
pub fn keep_freed_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: sets one of mimalloc's integer options; any thread, any time.
    ONCE.call_once(|| unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purging_is_off_after_the_call() {
        keep_freed_memory();
        // SAFETY: reads an option.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, -1);
        // SAFETY: as above; the option next to it is not touched.
        assert_ne!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY + 1) }, -1);
    }
}
