//! A minimal Flux client, loaded at run time.
//!
//! `libflux-core.so.2` is opened with libloading when a command needs a
//! live instance, so `flux-account` runs (and is tested) on machines with
//! no Flux. This module holds all of the command line's `unsafe` code.
//! Only non-variadic libflux calls are used (jobtap-abi.md §6–7).

use std::ffi::{c_char, c_int, c_void, CStr, CString};

use crate::error::{Error, Result};

type FluxOpen = unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void;
type FluxClose = unsafe extern "C" fn(*mut c_void);
type FluxRpc = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, u32, c_int) -> *mut c_void;
type FluxRpcGet = unsafe extern "C" fn(*mut c_void, *mut *const c_char) -> c_int;
type FluxFutureErrorString = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type FluxFutureVoid = unsafe extern "C" fn(*mut c_void);

/// `FLUX_NODEID_ANY`.
const NODEID_ANY: u32 = 0xFFFF_FFFF;
/// `FLUX_RPC_STREAMING`.
const RPC_STREAMING: c_int = 2;
/// Linux `ENODATA`: the end of a streaming response.
const ENODATA: i32 = 61;

/// An open handle to a Flux instance.
pub struct Flux {
    _lib: libloading::Library,
    h: *mut c_void,
    close: FluxClose,
    rpc: FluxRpc,
    rpc_get: FluxRpcGet,
    error_string: FluxFutureErrorString,
    reset: FluxFutureVoid,
    destroy: FluxFutureVoid,
}

/// Why no instance could be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreachable {
    /// libflux-core could not be loaded.
    NoLibrary(String),
    /// flux_open failed (no instance at FLUX_URI / the system URI).
    NoInstance,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreachable::NoLibrary(e) => write!(f, "libflux-core.so.2 could not be loaded ({e})"),
            Unreachable::NoInstance => write!(f, "no Flux instance could be reached (FLUX_URI or the system instance)"),
        }
    }
}

fn sym<T: Copy>(lib: &libloading::Library, name: &[u8]) -> std::result::Result<T, Unreachable> {
    // SAFETY: the symbol types above match flux-core's prototypes
    // (src/common/libflux/{handle,rpc,future}.h).
    unsafe { lib.get::<T>(name).map(|s| *s).map_err(|e| Unreachable::NoLibrary(e.to_string())) }
}

impl Flux {
    /// Loads libflux-core and opens the instance named by `FLUX_URI` (read
    /// by libflux itself) or the system instance.
    pub fn open() -> std::result::Result<Flux, Unreachable> {
        // SAFETY: loading a shared library runs its initialisers; libflux-core
        // has no unusual ones.
        let lib = unsafe { libloading::Library::new("libflux-core.so.2") }
            .map_err(|e| Unreachable::NoLibrary(e.to_string()))?;
        let open: FluxOpen = sym(&lib, b"flux_open\0")?;
        let close: FluxClose = sym(&lib, b"flux_close\0")?;
        let rpc: FluxRpc = sym(&lib, b"flux_rpc\0")?;
        let rpc_get: FluxRpcGet = sym(&lib, b"flux_rpc_get\0")?;
        let error_string: FluxFutureErrorString = sym(&lib, b"flux_future_error_string\0")?;
        let reset: FluxFutureVoid = sym(&lib, b"flux_future_reset\0")?;
        let destroy: FluxFutureVoid = sym(&lib, b"flux_future_destroy\0")?;
        // SAFETY: NULL uri means $FLUX_URI or the system instance.
        let h = unsafe { open(std::ptr::null(), 0) };
        if h.is_null() {
            return Err(Unreachable::NoInstance);
        }
        Ok(Flux { _lib: lib, h, close, rpc, rpc_get, error_string, reset, destroy })
    }

    fn future_error(&self, f: *mut c_void) -> String {
        // SAFETY: f is a live future; the returned string is owned by it.
        let p = unsafe { (self.error_string)(f) };
        if p.is_null() {
            std::io::Error::last_os_error().to_string()
        } else {
            // SAFETY: NUL-terminated string owned by the future.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    }

    /// Sends one request and waits for its single response payload.
    pub fn rpc(&self, topic: &str, payload: Option<&str>) -> Result<Option<String>> {
        let topic_c = CString::new(topic).map_err(|_| Error::invalid("topic contains NUL"))?;
        let payload_c = payload.map(CString::new).transpose().map_err(|_| Error::invalid("payload contains NUL"))?;
        // SAFETY: h is open; strings are NUL-terminated and outlive the call.
        let f = unsafe {
            (self.rpc)(
                self.h,
                topic_c.as_ptr(),
                payload_c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
                NODEID_ANY,
                0,
            )
        };
        if f.is_null() {
            return Err(Error::Io(format!("{topic}: {}", std::io::Error::last_os_error())));
        }
        let mut s: *const c_char = std::ptr::null();
        // SAFETY: f is a live future; s receives a string owned by f.
        let rc = unsafe { (self.rpc_get)(f, &mut s) };
        let out = if rc < 0 {
            Err(Error::Io(format!("{topic}: {}", self.future_error(f))))
        } else if s.is_null() {
            Ok(None)
        } else {
            // SAFETY: s is NUL-terminated and valid until f is destroyed.
            Ok(Some(unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()))
        };
        // SAFETY: f is destroyed exactly once.
        unsafe { (self.destroy)(f) };
        out
    }

    /// Sends a streaming request and calls `each` with every response
    /// payload until the stream ends (ENODATA).
    pub fn rpc_stream(&self, topic: &str, payload: &str, mut each: impl FnMut(&str) -> Result<()>) -> Result<()> {
        let topic_c = CString::new(topic).map_err(|_| Error::invalid("topic contains NUL"))?;
        let payload_c = CString::new(payload).map_err(|_| Error::invalid("payload contains NUL"))?;
        // SAFETY: as in rpc().
        let f = unsafe { (self.rpc)(self.h, topic_c.as_ptr(), payload_c.as_ptr(), NODEID_ANY, RPC_STREAMING) };
        if f.is_null() {
            return Err(Error::Io(format!("{topic}: {}", std::io::Error::last_os_error())));
        }
        let result = loop {
            let mut s: *const c_char = std::ptr::null();
            // SAFETY: f is live.
            let rc = unsafe { (self.rpc_get)(f, &mut s) };
            if rc < 0 {
                let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                if errno == ENODATA {
                    break Ok(());
                }
                break Err(Error::Io(format!("{topic}: {}", self.future_error(f))));
            }
            if !s.is_null() {
                // SAFETY: valid until the next reset.
                let text = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
                if let Err(e) = each(&text) {
                    break Err(e);
                }
            }
            // SAFETY: f is live; reset prepares it for the next response.
            unsafe { (self.reset)(f) };
        };
        // SAFETY: destroyed once.
        unsafe { (self.destroy)(f) };
        result
    }
}

impl Drop for Flux {
    fn drop(&mut self) {
        // SAFETY: h was returned by flux_open and is closed once.
        unsafe { (self.close)(self.h) };
    }
}

// Requests in flight (fetch-job-records' live source). flux_rpc returns a
// future at once; the response is read later with flux_rpc_get, so many
// requests can be outstanding on one handle.

/// A request sent and not yet answered. Dropping it destroys the future.
pub struct Pending<'f> {
    flux: &'f Flux,
    f: *mut c_void,
}

impl Flux {
    /// Sends a request and returns at once; [`Pending::get`] waits for the
    /// response.
    pub fn rpc_send(&self, topic: &str, payload: &str) -> Result<Pending<'_>> {
        let topic_c = CString::new(topic).map_err(|_| Error::invalid("topic contains NUL"))?;
        let payload_c = CString::new(payload).map_err(|_| Error::invalid("payload contains NUL"))?;
        // SAFETY: h is open; the strings are NUL-terminated and outlive the
        // call (libflux copies them into the request message).
        let f = unsafe { (self.rpc)(self.h, topic_c.as_ptr(), payload_c.as_ptr(), NODEID_ANY, 0) };
        if f.is_null() {
            return Err(Error::Io(format!("{topic}: {}", std::io::Error::last_os_error())));
        }
        Ok(Pending { flux: self, f })
    }
}

impl Pending<'_> {
    /// Waits for the response; `Err` carries the error string of a failed
    /// request.
    pub fn get(self) -> std::result::Result<Option<String>, String> {
        let mut s: *const c_char = std::ptr::null();
        // SAFETY: f is a live future of this handle; s receives a string
        // owned by f.
        let rc = unsafe { (self.flux.rpc_get)(self.f, &mut s) };
        if rc < 0 {
            return Err(self.flux.future_error(self.f));
        }
        if s.is_null() {
            return Ok(None);
        }
        // SAFETY: s is NUL-terminated and valid until f is destroyed (in drop).
        Ok(Some(unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()))
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        // SAFETY: f was returned by flux_rpc and is destroyed exactly once.
        unsafe { (self.flux.destroy)(self.f) };
    }
}
