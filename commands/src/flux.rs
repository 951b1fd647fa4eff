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

/// Flux job state bits (`FLUX_JOB_STATE_*`).
pub mod job_state {
    /// DEPEND.
    pub const DEPEND: u32 = 2;
    /// PRIORITY.
    pub const PRIORITY: u32 = 4;
    /// SCHED.
    pub const SCHED: u32 = 8;
    /// RUN.
    pub const RUN: u32 = 16;
    /// CLEANUP.
    pub const CLEANUP: u32 = 32;
    /// INACTIVE.
    pub const INACTIVE: u32 = 64;
    /// DEPEND | PRIORITY | SCHED.
    pub const PENDING: u32 = DEPEND | PRIORITY | SCHED;
    /// RUN | CLEANUP.
    pub const RUNNING: u32 = RUN | CLEANUP;
    /// Every state but INACTIVE (and NEW).
    pub const ACTIVE: u32 = PENDING | RUNNING;
}

/// Flux job result bits (`FLUX_JOB_RESULT_*`).
pub mod job_result {
    /// COMPLETED.
    pub const COMPLETED: u32 = 1;
    /// FAILED.
    pub const FAILED: u32 = 2;
    /// CANCELED.
    pub const CANCELED: u32 = 4;
    /// TIMEOUT.
    pub const TIMEOUT: u32 = 8;
}

/// A `job-list.list` query (RFC 31/43 constraint), as `flux.job.JobList`
/// builds it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobListQuery {
    /// Only jobs of this uid.
    pub userid: Option<u32>,
    /// Only jobs in this queue.
    pub queue: Option<String>,
    /// State bits (0: any).
    pub states: u32,
    /// Result bits (0: any).
    pub results: u32,
    /// Jobs inactive since this time (epoch seconds; 0: all).
    pub since: f64,
    /// At most this many jobs (0: all).
    pub max_entries: u32,
    /// Attributes to return.
    pub attrs: Vec<String>,
}

impl JobListQuery {
    /// The request payload: `{max_entries, attrs, since, constraint}`, the
    /// constraint AND-ing userid, queue, and states OR results.
    pub fn payload(&self) -> serde_json::Value {
        use serde_json::json;
        let mut and = Vec::new();
        if let Some(u) = self.userid {
            and.push(json!({"userid": [u]}));
        }
        if let Some(q) = &self.queue {
            and.push(json!({"queue": [q]}));
        }
        match (self.states, self.results) {
            (0, 0) => {}
            (s, 0) => and.push(json!({"states": [s]})),
            (0, r) => and.push(json!({"results": [r]})),
            (s, r) => and.push(json!({"or": [{"states": [s]}, {"results": [r]}]})),
        }
        json!({
            "max_entries": self.max_entries,
            "attrs": self.attrs,
            "since": self.since,
            "constraint": {"and": and},
        })
    }
}

impl Flux {
    /// `job-list.list` (one response, `{"jobs": [...]}`): the job objects.
    pub fn job_list(&self, query: &JobListQuery) -> Result<Vec<serde_json::Value>> {
        let reply = self.rpc("job-list.list", Some(&query.payload().to_string()))?.unwrap_or_default();
        let v: serde_json::Value =
            serde_json::from_str(&reply).map_err(|e| Error::Io(format!("job-list.list: invalid response: {e}")))?;
        match v.get("jobs") {
            Some(serde_json::Value::Array(a)) => Ok(a.clone()),
            _ => Err(Error::Io("job-list.list: response has no jobs array".into())),
        }
    }

    /// `job-list.list-id`: one job's attributes (`None` if the instance does
    /// not know the id).
    pub fn job_list_id(&self, id: u64, attrs: &[String]) -> Result<Option<serde_json::Value>> {
        let payload = serde_json::json!({"id": id, "attrs": attrs}).to_string();
        match self.rpc("job-list.list-id", Some(&payload)) {
            Ok(reply) => {
                let v: serde_json::Value = serde_json::from_str(&reply.unwrap_or_default())
                    .map_err(|e| Error::Io(format!("job-list.list-id: invalid response: {e}")))?;
                Ok(v.get("job").cloned())
            }
            Err(Error::Io(msg)) if msg.contains("No such file") || msg.contains("not found") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod job_list_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_ands_user_queue_and_states_or_results() {
        let q = JobListQuery {
            userid: Some(5001),
            queue: Some("gold".into()),
            states: job_state::PENDING,
            results: job_result::CANCELED,
            since: 12.5,
            max_entries: 2,
            attrs: vec!["id".into()],
        };
        assert_eq!(
            q.payload(),
            json!({"max_entries": 2, "attrs": ["id"], "since": 12.5, "constraint": {"and": [
                {"userid": [5001]}, {"queue": ["gold"]}, {"or": [{"states": [14]}, {"results": [4]}]}]}})
        );
        let all = JobListQuery::default().payload();
        assert_eq!(all["constraint"], json!({"and": []}));
    }
}
