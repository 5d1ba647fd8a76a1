//! The arithmetic kernels of the fast paths, and the one rule they all keep.
//!
//! # The rule: one operation sequence per output element
//! Every kernel computes each output element by a fixed sequence of IEEE-754
//! operations, independent of blocking, vector width and thread count:
//!
//! * a product-sum `Σ_k a_k b_k` is a chain of fused multiply-adds in
//!   ascending `k`, starting from `+0.0`: `s ← fma(a_k, b_k, s)`;
//! * the sigmoid is [`sigmoid`] below (our own `exp`, built from `+ − × ÷`,
//!   `fma`, `floor`, round-half-even and exponent-bit arithmetic: operations
//!   IEEE-754 rounds exactly, so scalar and vector code agree bit for bit);
//! * `tanh` is the standard library's, called per element;
//! * the softmax head's `e^{z − max z}` is our `exp` too, its `ln Σ` the
//!   standard library's `ln`, called per element (see [`heads`]).
//!
//! Every [`Isa`] therefore produces bit-identical results; the vector paths
//! only run the independent chains side by side.

use std::sync::OnceLock;

/// Which instruction set the fast kernels use. Results are bit-identical
/// across instruction sets (see [`crate::fast`]); only speed differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust with `f64::mul_add`: any CPU. Fast where the CPU has a
    /// fused multiply-add instruction the compiler may use, slow (a library
    /// call per multiply-add) where it has not.
    Portable,
    /// x86-64 AVX2 and FMA (Intel since 2013, AMD since 2015), chosen at run
    /// time when the CPU has them.
    Avx2Fma,
    /// x86-64 AVX-512 (F, VL, DQ) with AVX2 and FMA: 8-wide vectors and 32
    /// registers (Intel server CPUs since 2017, AMD Zen 4 and later).
    Avx512,
}

impl Isa {
    /// The fastest instruction set this CPU supports (detected once).
    pub fn detect() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            [Isa::Avx512, Isa::Avx2Fma]
                .into_iter()
                .find(|isa| isa.supported())
                .unwrap_or(Isa::Portable)
        })
    }

    /// True when this CPU can run these kernels.
    pub fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Isa::Portable => true,
                Isa::Avx2Fma => has!("avx2") && has!("fma"),
                Isa::Avx512 => {
                    has!("avx2")
                        && has!("fma")
                        && has!("avx512f")
                        && has!("avx512vl")
                        && has!("avx512dq")
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Portable
        }
    }

    /// The given instruction set if this CPU supports it, else `Portable`.
    pub fn or_portable(self) -> Isa {
        if self.supported() {
            self
        } else {
            Isa::Portable
        }
    }

    /// Every instruction set this CPU supports, `Portable` first.
    pub fn all_supported() -> Vec<Isa> {
        [Isa::Portable, Isa::Avx2Fma, Isa::Avx512]
            .into_iter()
            .filter(|isa| isa.supported())
            .collect()
    }
}

/// Defines `fn $name(isa, args…)` that runs one `#[inline(always)]`
/// body compiled three times: for the baseline target, with AVX2 + FMA, and
/// with AVX-512 enabled.
/// The same source, so the same IEEE operation sequence (see the rule above).
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(isa: Isa, $($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            fn avx2($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512dq")]
            #[allow(clippy::too_many_arguments)]
            fn avx512($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
            match isa {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: an `Isa` other than `Portable` is only used when the
                // CPU has its features (`Isa::detect`, `Isa::or_portable`).
                Isa::Avx2Fma => unsafe { avx2($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                Isa::Avx512 => unsafe { avx512($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}

pub(crate) use multiversion;

mod batched;
mod heads;
mod products;
mod recurrences;
mod sigmoid;
#[cfg(test)]
mod tests;

pub(crate) use batched::*;
pub(crate) use heads::*;
pub(crate) use products::*;
pub(crate) use recurrences::*;
pub(crate) use sigmoid::*;
