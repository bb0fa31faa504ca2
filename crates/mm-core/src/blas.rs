//! An optional system BLAS for the CPU path's matrix products.
//!
//! Every matrix product of the fused kernels on Flex runs on the `gemm` crate (the kernel Flex
//! itself calls) unless a BLAS library is named: then `cblas_sgemm` from that library runs
//! them. On Intel CPUs Intel's MKL (PyTorch's own GEMM, on PyPI as the `mkl` package) is
//! 1.1x the `gemm` crate at many rows and 2-5x at few rows or a long inner dimension
//! (docs/performance.md, "Seventh session").
//!
//! The library is named by the `MM_BLAS` environment variable: the path of a shared library
//! that exports `cblas_sgemm` with 32-bit integers (MKL's `libmkl_rt.so.2`, OpenBLAS's
//! `libopenblas.so.0`, Debian's reference `libblas.so.3`). It is loaded once, on the first
//! product; [`from_env`] loads it up front and says what went wrong, which `xtask` does at
//! start.
//!
//! Threads: MKL runs on its GNU OpenMP layer (`libgomp`, unless `MKL_THREADING_LAYER` says
//! otherwise) and is told, call by call, to use as many threads as rayon's pool has (sized by
//! `--threads` or `RAYON_NUM_THREADS`) for a product the caller runs alone, and one thread for a
//! product inside a rayon task (one attention head, one convolution sample). A library without
//! a per-call thread count (OpenBLAS, the reference BLAS) runs single-threaded and
//! `nn::fused` splits its products over rayon's pool instead.

use std::ffi::{CStr, CString, c_char, c_float, c_int, c_void};
use std::fmt;
use std::sync::OnceLock;

/// The environment variable that names the BLAS library.
pub const ENV: &str = "MM_BLAS";

/// Why a BLAS library could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BlasError {
    /// The dynamic loader refused the file (missing, not a shared library, wrong architecture).
    #[error("cannot load the BLAS library {path}: {reason}")]
    Load {
        /// The path given.
        path: String,
        /// The loader's message.
        reason: String,
    },
    /// The library loaded but has no `cblas_sgemm`.
    #[error("{path} has no cblas_sgemm: name a CBLAS library (MKL's libmkl_rt, OpenBLAS)")]
    NoSgemm {
        /// The path given.
        path: String,
    },
    /// Dynamic loading is not available on this platform.
    #[error("loading a BLAS library at run time needs a Unix dynamic loader")]
    Unsupported,
}

/// `cblas_sgemm` with 32-bit integers (the LP64 interface).
type Sgemm = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_float,
    *const c_float,
    c_int,
    *const c_float,
    c_int,
    c_float,
    *mut c_float,
    c_int,
);

/// CBLAS's row-major layout.
const ROW_MAJOR: c_int = 101;
/// CBLAS's "as stored".
const NO_TRANS: c_int = 111;
/// CBLAS's "transposed".
const TRANS: c_int = 112;
/// MKL's GNU OpenMP threading layer (`MKL_THREADING_GNU`).
const MKL_GNU: c_int = 3;

/// A per-thread thread count setter (`mkl_set_num_threads_local`): returns the previous one.
type SetThreadsLocal = unsafe extern "C" fn(c_int) -> c_int;

/// A loaded CBLAS library (kept loaded for the life of the process).
pub struct Blas {
    path: String,
    sgemm: Sgemm,
    threads_local: Option<SetThreadsLocal>,
}

impl fmt::Debug for Blas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blas").field("path", &self.path).finish()
    }
}

/// One operand of [`Blas::sgemm`]: `rows x cols`, element `(r, c)` at
/// `ptr[r * row_stride + c * col_stride]`, one of the two strides 1.
#[derive(Debug, Clone, Copy)]
pub struct Operand {
    /// The first element.
    pub ptr: *const f32,
    /// Rows of the operand as used in the product.
    pub rows: usize,
    /// Columns of the operand as used in the product.
    pub cols: usize,
    /// Elements between consecutive rows.
    pub row_stride: usize,
    /// Elements between consecutive columns.
    pub col_stride: usize,
}

impl Operand {
    /// CBLAS's transpose flag and leading dimension for this operand in a row-major product,
    /// or `None` when neither stride is 1 or a size does not fit in 32 bits.
    fn layout(&self) -> Option<(c_int, c_int)> {
        let (flag, lead, min) = if self.col_stride == 1 && self.row_stride >= self.cols.max(1) {
            (NO_TRANS, self.row_stride, self.cols)
        } else if self.row_stride == 1 && self.col_stride >= self.rows.max(1) {
            (TRANS, self.col_stride, self.rows)
        } else if self.rows == 1 && self.col_stride == 1 {
            (NO_TRANS, self.cols.max(1), self.cols)
        } else if self.cols == 1 && self.row_stride == 1 {
            (TRANS, self.rows.max(1), self.rows)
        } else {
            return None;
        };
        let lead = c_int::try_from(lead.max(min).max(1)).ok()?;
        c_int::try_from(self.rows.max(self.cols)).ok()?;
        Some((flag, lead))
    }
}

impl Blas {
    /// Loads the CBLAS library at `path`: MKL on its GNU OpenMP layer, any other library
    /// single-threaded.
    ///
    /// # Errors
    /// When the file does not load or lacks `cblas_sgemm`.
    pub fn open(path: &str) -> Result<Self, BlasError> {
        spin_briefly();
        let handle = dl::open(path).map_err(|reason| BlasError::Load {
            path: path.to_string(),
            reason,
        })?;
        let sgemm = dl::symbol(handle, c"cblas_sgemm").ok_or_else(|| BlasError::NoSgemm {
            path: path.to_string(),
        })?;
        let threads_local = dl::symbol(handle, c"MKL_Set_Num_Threads_Local");
        // SAFETY: the setters take one `int` (and MKL's return one) in MKL and OpenBLAS; MKL's
        // layer must be chosen before its first computation, which no other code of ours makes.
        #[allow(unsafe_code)]
        unsafe {
            if let Some(set) = dl::symbol(handle, c"MKL_Set_Threading_Layer")
                && std::env::var_os("MKL_THREADING_LAYER").is_none()
            {
                let set: unsafe extern "C" fn(c_int) -> c_int = std::mem::transmute(set);
                set(MKL_GNU);
            }
            if let Some(set) = dl::symbol(handle, c"openblas_set_num_threads") {
                let set: unsafe extern "C" fn(c_int) = std::mem::transmute(set);
                set(1);
            }
        }
        // SAFETY: `cblas_sgemm` has this signature in every CBLAS with 32-bit integers, and
        // `MKL_Set_Num_Threads_Local` takes and returns one `int`.
        #[allow(unsafe_code)]
        let (sgemm, threads_local) = unsafe {
            (
                std::mem::transmute::<*mut c_void, Sgemm>(sgemm),
                threads_local.map(|f| std::mem::transmute::<*mut c_void, SetThreadsLocal>(f)),
            )
        };
        Ok(Self {
            path: path.to_string(),
            sgemm,
            threads_local,
        })
    }

    /// Whether the library takes a thread count per call ([`Blas::sgemm`]'s `threads`); one
    /// that does not runs every call on one thread.
    pub fn threads_per_call(&self) -> bool {
        self.threads_local.is_some()
    }

    /// The path the library was loaded from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether [`Blas::sgemm`] takes these operands (one unit stride each, sizes in 32 bits).
    pub fn accepts(a: &Operand, b: &Operand) -> bool {
        a.layout().is_some() && b.layout().is_some()
    }

    /// `out = a b` (`out += a b` when `accumulate`), `out` row-major with rows `out_stride`
    /// apart, on `threads` threads where the library takes a count per call
    /// ([`Blas::threads_per_call`]); returns `false`, touching nothing, when [`Blas::accepts`]
    /// refuses the operands.
    ///
    /// # Safety
    /// `a` and `b` must be readable at every element they describe; `out` writable (and
    /// initialized, when `accumulate`) at `a.rows` rows of `b.cols` elements, `out_stride >=
    /// b.cols` apart, aliasing neither operand; `a.cols == b.rows`.
    #[allow(unsafe_code)]
    pub unsafe fn sgemm(
        &self,
        a: &Operand,
        b: &Operand,
        out: *mut f32,
        out_stride: usize,
        accumulate: bool,
        threads: usize,
    ) -> bool {
        let (Some((ta, lda)), Some((tb, ldb))) = (a.layout(), b.layout()) else {
            return false;
        };
        let (Ok(m), Ok(n), Ok(k), Ok(ldc)) = (
            c_int::try_from(a.rows),
            c_int::try_from(b.cols),
            c_int::try_from(a.cols),
            c_int::try_from(out_stride.max(b.cols).max(1)),
        ) else {
            return false;
        };
        let beta = if accumulate { 1.0 } else { 0.0 };
        if let Some(set) = self.threads_local {
            // SAFETY: MKL's per-thread count takes any positive `int`.
            unsafe { set(c_int::try_from(threads.max(1)).unwrap_or(1)) };
        }
        // SAFETY: the caller guarantees the extents; the flags and leading dimensions describe
        // exactly the operands' strides (`Operand::layout`).
        unsafe {
            (self.sgemm)(
                ROW_MAJOR, ta, tb, m, n, k, 1.0, a.ptr, lda, b.ptr, ldb, beta, out, ldc,
            )
        };
        true
    }
}

/// How many times an idle OpenMP thread polls for work before it sleeps, unless the user set
/// `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY`: libgomp's default (300,000, about a millisecond) keeps
/// MKL's threads spinning on the cores rayon's pool needs for the element-wise work between
/// two products; 20,000 measured best (docs/performance.md, "Seventh session").
const GOMP_SPINCOUNT: &str = "20000";

/// Sets `GOMP_SPINCOUNT` for the OpenMP runtime MKL loads, unless the user chose a policy.
fn spin_briefly() {
    if std::env::var_os("GOMP_SPINCOUNT").is_some() || std::env::var_os("OMP_WAIT_POLICY").is_some()
    {
        return;
    }
    // SAFETY: libgomp reads the variable when it is loaded, which is after this (through the
    // BLAS library). Rust's own environment reads take the same lock as this write; a C
    // library reading the environment on another thread at this instant is the remaining
    // risk, and `xtask` loads the library first thing, before any such work starts.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("GOMP_SPINCOUNT", GOMP_SPINCOUNT)
    };
}

/// The library named by `MM_BLAS`, loaded on first use; `None` when the variable is unset or
/// empty, or the library did not load (the error is printed once, on the first call; [`from_env`]
/// returns it).
pub fn active() -> Option<&'static Blas> {
    match loaded() {
        Ok(lib) => lib.as_ref(),
        Err(e) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| eprintln!("{ENV}: {e}; matrix products stay on the gemm crate"));
            None
        }
    }
}

/// Loads the library named by `MM_BLAS` now: `Ok(None)` when none is named.
///
/// # Errors
/// When the named library does not load or lacks `cblas_sgemm`.
pub fn from_env() -> Result<Option<&'static Blas>, &'static BlasError> {
    loaded().as_ref().map(Option::as_ref)
}

fn loaded() -> &'static Result<Option<Blas>, BlasError> {
    static LOADED: OnceLock<Result<Option<Blas>, BlasError>> = OnceLock::new();
    LOADED.get_or_init(|| {
        let path = std::env::var(ENV).unwrap_or_default();
        if path.is_empty() {
            return Ok(None);
        }
        Blas::open(&path).map(Some)
    })
}

#[cfg(unix)]
#[allow(unsafe_code)]
mod dl {
    use super::*;

    /// `dlopen(path, RTLD_NOW | RTLD_LOCAL)`, or the loader's message.
    pub(super) fn open(path: &str) -> Result<*mut c_void, String> {
        let c_path = CString::new(path).map_err(|_| "the path holds a NUL byte".to_string())?;
        // SAFETY: `c_path` is a NUL-terminated string alive for the call; `dlerror` returns
        // a thread-local message or null.
        unsafe {
            let handle = libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            if handle.is_null() {
                let msg = libc::dlerror();
                return Err(if msg.is_null() {
                    "unknown error".to_string()
                } else {
                    CStr::from_ptr(msg as *const c_char)
                        .to_string_lossy()
                        .into_owned()
                });
            }
            Ok(handle)
        }
    }

    /// The address of `name` in the library, if it exports it.
    pub(super) fn symbol(handle: *mut c_void, name: &CStr) -> Option<*mut c_void> {
        // SAFETY: `handle` came from `dlopen` and is never closed; `name` is NUL-terminated.
        let sym = unsafe { libc::dlsym(handle, name.as_ptr()) };
        (!sym.is_null()).then_some(sym)
    }
}

#[cfg(not(unix))]
mod dl {
    use super::*;

    pub(super) fn open(_path: &str) -> Result<*mut c_void, String> {
        Err(BlasError::Unsupported.to_string())
    }

    pub(super) fn symbol(_handle: *mut c_void, _name: &CStr) -> Option<*mut c_void> {
        None
    }
}
