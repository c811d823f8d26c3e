//! The request path's random numbers: weighted route picks, endpoint picks, fault and mirror
//! draws, retry jitter and trace ids.
//!
//! None of these needs a cryptographic generator (Envoy uses a plain PRNG for the same draws), so
//! each thread runs wyrand — one multiply per number — seeded once from the OS through
//! [`rand::random`]. `rand`'s thread RNG (ChaCha12, reseeding) cost a buffer refill every few
//! draws on the request path.

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = Cell::new(rand::random());
}

/// The next uniform `u64` of this thread's generator.
pub(crate) fn u64() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = u128::from(x) * u128::from(x ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// A uniform `f64` in `0.0..1.0` (53 random bits).
pub(crate) fn f64() -> f64 {
    (u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform `u128`.
pub(crate) fn u128() -> u128 {
    (u128::from(u64()) << 64) | u128::from(u64())
}

/// [`mesh_core::balance::RandomSource`] over this thread's generator.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ThreadRandom;

impl mesh_core::balance::RandomSource for ThreadRandom {
    fn next_u64(&mut self) -> u64 {
        u64()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_are_uniform_enough_for_routing() {
        // 100,000 draws into 10 buckets: each within 5 % of its share, and f64 stays in range.
        let mut buckets = [0u32; 10];
        for _ in 0..100_000 {
            let f = super::f64();
            assert!((0.0..1.0).contains(&f));
            buckets[(super::u64() % 10) as usize] += 1;
        }
        for b in buckets {
            assert!((9_500..=10_500).contains(&b), "{buckets:?}");
        }
        assert_ne!(super::u128(), super::u128());
    }
}
