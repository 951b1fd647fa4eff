//! A minimal Flux client, loaded at run time.
//!
//! `libflux-core.so.2` is opened with libloading when a command needs a
//! live instance, so `flux-account` runs (and is tested) on machines with
//! no Flux. This module holds all of the command line's `unsafe` code.
//! Only non-variadic libflux calls are used (jobtap-abi.md §6–7).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

type FluxOpen = unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void;
type FluxClose = unsafe extern "C" fn(*mut c_void);
type FluxRpc = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, u32, c_int) -> *mut c_void;
type FluxRpcGet = unsafe extern "C" fn(*mut c_void, *mut *const c_char) -> c_int;
type FluxFutureErrorString = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type FluxFutureVoid = unsafe extern "C" fn(*mut c_void);
type FluxKvsLookup = unsafe extern "C" fn(*mut c_void, *const c_char, c_int, *const c_char) -> *mut c_void;
type FluxKvsLookupGet = unsafe extern "C" fn(*mut c_void, *mut *const c_char) -> c_int;

/// `FLUX_NODEID_ANY`.
const NODEID_ANY: u32 = 0xFFFF_FFFF;
/// `FLUX_RPC_STREAMING`.
const RPC_STREAMING: c_int = 2;
/// Linux `ENODATA`: the end of a streaming response.
const ENODATA: i32 = 61;
/// Linux `ENOENT`.
pub const ENOENT: i32 = 2;
/// Linux `EPERM`.
pub const EPERM: i32 = 1;

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
    kvs_lookup: FluxKvsLookup,
    kvs_lookup_get: FluxKvsLookupGet,
}

/// The environment libflux-core is looked for in, filled in by the binary
/// (the library reads no environment itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FluxEnv {
    /// `FLUXACCT_LIBFLUX`: the library file (or its directory); overrides
    /// every other place.
    pub libflux: Option<PathBuf>,
    /// `FLUX_CONNECTOR_PATH`, set by the `flux` driver (`<libdir>/flux/connectors`).
    pub connector_path: Option<String>,
    /// `FLUX_MODULE_PATH`, set by the `flux` driver (`<libdir>/flux/modules`).
    pub module_path: Option<String>,
    /// `FLUX_EXEC_PATH`, set by the `flux` driver (`<prefix>/libexec/flux/cmd`).
    pub exec_path: Option<String>,
    /// `PATH`, searched for the `flux` command (`<prefix>/bin/flux`).
    pub path: Option<String>,
    /// `FLUX_URI` (read by libflux itself; named in messages).
    pub uri: Option<String>,
}

/// The library's file name.
pub const LIBFLUX: &str = "libflux-core.so.2";

/// Library directories tried under an install prefix.
const LIBDIRS: [&str; 4] = ["lib", "lib64", "lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu"];

/// One place libflux-core may be loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// A path, or the bare file name for the linker's default search.
    pub path: PathBuf,
    /// Where the path came from (for messages).
    pub source: &'static str,
}

impl std::fmt::Display for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.path.display(), self.source)
    }
}

fn entries(list: &Option<String>) -> impl Iterator<Item = &Path> {
    list.as_deref().unwrap_or("").split(':').filter(|e| !e.is_empty()).map(Path::new)
}

/// The places to load libflux-core from, in order: `FLUXACCT_LIBFLUX`
/// alone when set; else the install the `flux` driver belongs to (its
/// `FLUX_CONNECTOR_PATH`, `FLUX_MODULE_PATH` and `FLUX_EXEC_PATH`), the
/// install of the first `flux` on `PATH`, and last the linker's default
/// search. Only files that exist (per `exists`) are listed, except the
/// override and the linker default. `resolve` follows symlinks (of
/// `flux` on `PATH`).
pub fn libflux_candidates(
    env: &FluxEnv,
    exists: &dyn Fn(&Path) -> bool,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Vec<Candidate> {
    if let Some(p) = &env.libflux {
        let path = if exists(&p.join(LIBFLUX)) { p.join(LIBFLUX) } else { p.clone() };
        return vec![Candidate { path, source: "FLUXACCT_LIBFLUX" }];
    }
    let mut out: Vec<Candidate> = Vec::new();
    let push = |path: PathBuf, source: &'static str, out: &mut Vec<Candidate>| {
        if exists(&path) && !out.iter().any(|c| c.path == path) {
            out.push(Candidate { path, source });
        }
    };
    for (list, source) in [(&env.connector_path, "FLUX_CONNECTOR_PATH"), (&env.module_path, "FLUX_MODULE_PATH")] {
        for e in entries(list) {
            if let Some(libdir) = e.parent().and_then(Path::parent) {
                push(libdir.join(LIBFLUX), source, &mut out);
            }
        }
    }
    for e in entries(&env.exec_path) {
        if let Some(prefix) = e.parent().and_then(Path::parent).and_then(Path::parent) {
            for d in LIBDIRS {
                push(prefix.join(d).join(LIBFLUX), "FLUX_EXEC_PATH", &mut out);
            }
        }
    }
    if let Some(flux) = entries(&env.path).map(|d| d.join("flux")).find(|f| exists(f)) {
        let flux = resolve(&flux);
        if let Some(prefix) = flux.parent().and_then(Path::parent) {
            for d in LIBDIRS {
                push(prefix.join(d).join(LIBFLUX), "the flux on PATH", &mut out);
            }
        }
    }
    out.push(Candidate { path: PathBuf::from(LIBFLUX), source: "the linker's default search" });
    out
}

/// Why no instance could be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreachable {
    /// libflux-core could not be loaded from any candidate: each with its error.
    NoLibrary(Vec<(Candidate, String)>),
    /// flux_open failed (no instance at FLUX_URI / the system URI).
    NoInstance {
        /// `FLUX_URI`, if set.
        uri: Option<String>,
        /// The library that was loaded.
        lib: Candidate,
    },
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreachable::NoLibrary(tried) => {
                let tried: Vec<String> = tried.iter().map(|(c, e)| format!("{c}: {e}")).collect();
                write!(
                    f,
                    "{LIBFLUX} could not be loaded (tried {}); set FLUXACCT_LIBFLUX to its path",
                    tried.join("; ")
                )
            }
            Unreachable::NoInstance { uri, lib } => {
                let at = match uri {
                    Some(u) => format!("at FLUX_URI={u}"),
                    None => "(FLUX_URI is not set, so the system instance was tried)".to_string(),
                };
                write!(f, "no Flux instance could be reached {at}, using {lib}")
            }
        }
    }
}

fn sym<T: Copy>(lib: &libloading::Library, name: &[u8]) -> std::result::Result<T, String> {
    // SAFETY: the symbol types above match flux-core's prototypes
    // (src/common/libflux/{handle,rpc,future}.h).
    unsafe { lib.get::<T>(name).map(|s| *s).map_err(|e| e.to_string()) }
}

impl Flux {
    /// Loads libflux-core from the first of [`libflux_candidates`] that
    /// loads, and opens the instance named by `FLUX_URI` (read by libflux
    /// itself) or the system instance.
    pub fn open(env: &FluxEnv) -> std::result::Result<Flux, Unreachable> {
        let exists = |p: &Path| p.is_file();
        let resolve = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let mut tried = Vec::new();
        for c in libflux_candidates(env, &exists, &resolve) {
            match Flux::open_with(&c.path) {
                Ok(Some(flux)) => return Ok(flux),
                Ok(None) => return Err(Unreachable::NoInstance { uri: env.uri.clone(), lib: c }),
                Err(e) => tried.push((c, e)),
            }
        }
        Err(Unreachable::NoLibrary(tried))
    }

    /// Loads one library and opens the instance: `Ok(None)` when the
    /// library loaded but no instance answered.
    fn open_with(path: &Path) -> std::result::Result<Option<Flux>, String> {
        // SAFETY: loading a shared library runs its initialisers; libflux-core
        // has no unusual ones.
        let lib = unsafe { libloading::Library::new(path.as_os_str()) }.map_err(|e| e.to_string())?;
        let open: FluxOpen = sym(&lib, b"flux_open\0")?;
        let close: FluxClose = sym(&lib, b"flux_close\0")?;
        let rpc: FluxRpc = sym(&lib, b"flux_rpc\0")?;
        let rpc_get: FluxRpcGet = sym(&lib, b"flux_rpc_get\0")?;
        let error_string: FluxFutureErrorString = sym(&lib, b"flux_future_error_string\0")?;
        let reset: FluxFutureVoid = sym(&lib, b"flux_future_reset\0")?;
        let destroy: FluxFutureVoid = sym(&lib, b"flux_future_destroy\0")?;
        let kvs_lookup: FluxKvsLookup = sym(&lib, b"flux_kvs_lookup\0")?;
        let kvs_lookup_get: FluxKvsLookupGet = sym(&lib, b"flux_kvs_lookup_get\0")?;
        // SAFETY: NULL uri means $FLUX_URI or the system instance.
        let h = unsafe { open(std::ptr::null(), 0) };
        if h.is_null() {
            return Ok(None);
        }
        Ok(Some(Flux { _lib: lib, h, close, rpc, rpc_get, error_string, reset, destroy, kvs_lookup, kvs_lookup_get }))
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
        self.rpc_unless(topic, payload, 0)?.ok_or_else(|| Error::io_msg(format!("{topic}: no response")))
    }

    /// [`Flux::rpc`], except that an error response with errno `absent`
    /// gives `Ok(None)` (e.g. `ENOENT` from `job-info.lookup` for a job
    /// whose data is gone). Any other failure, such as the broker going
    /// away, is an error.
    pub fn rpc_unless(&self, topic: &str, payload: Option<&str>, absent: i32) -> Result<Option<Option<String>>> {
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
            return Err(Error::io(topic, std::io::Error::last_os_error()));
        }
        let mut s: *const c_char = std::ptr::null();
        // SAFETY: f is a live future; s receives a string owned by f.
        let rc = unsafe { (self.rpc_get)(f, &mut s) };
        let out = if rc < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if absent != 0 && errno == absent {
                Ok(None)
            } else {
                Err(Error::io_msg(format!("{topic}: {}", self.future_error(f))))
            }
        } else if s.is_null() {
            Ok(Some(None))
        } else {
            // SAFETY: s is NUL-terminated and valid until f is destroyed.
            Ok(Some(Some(unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned())))
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
            return Err(Error::io(topic, std::io::Error::last_os_error()));
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
                break Err(Error::io_msg(format!("{topic}: {}", self.future_error(f))));
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
            serde_json::from_str(&reply).map_err(|e| Error::io_msg(format!("job-list.list: invalid response: {e}")))?;
        match v.get("jobs") {
            Some(serde_json::Value::Array(a)) => Ok(a.clone()),
            _ => Err(Error::io_msg("job-list.list: response has no jobs array")),
        }
    }

    /// `job-list.list-id`: one job's attributes (`None` if the instance does
    /// not know the id).
    pub fn job_list_id(&self, id: u64, attrs: &[String]) -> Result<Option<serde_json::Value>> {
        let payload = serde_json::json!({"id": id, "attrs": attrs}).to_string();
        match self.rpc_unless("job-list.list-id", Some(&payload), ENOENT)? {
            None => Ok(None),
            Some(reply) => {
                let v: serde_json::Value = serde_json::from_str(&reply.unwrap_or_default())
                    .map_err(|e| Error::io_msg(format!("job-list.list-id: invalid response: {e}")))?;
                Ok(v.get("job").cloned())
            }
        }
    }
}

// Requests in flight (fetch-job-records' live source). flux_rpc returns a
// future at once; the response is read later with flux_rpc_get, so many
// requests can be outstanding on one handle.

/// A request sent and not yet answered. Dropping it destroys the future.
pub struct Pending<'f> {
    flux: &'f Flux,
    f: *mut c_void,
    /// A `flux_kvs_lookup` future (its value is read with
    /// `flux_kvs_lookup_get`), not a plain RPC.
    kvs: bool,
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
            return Err(Error::io_msg(format!("{topic}: {}", std::io::Error::last_os_error())));
        }
        Ok(Pending { flux: self, f, kvs: false })
    }

    /// Looks up a KVS key of namespace `ns` (`flux_kvs_lookup`) and
    /// returns at once; [`Pending::get`] waits for the value (`ENOENT`
    /// when the key does not exist, `EPERM` when the caller may not read
    /// the namespace).
    pub fn kvs_lookup_send(&self, ns: &str, key: &str) -> Result<Pending<'_>> {
        let ns_c = CString::new(ns).map_err(|_| Error::invalid("namespace contains NUL"))?;
        let key_c = CString::new(key).map_err(|_| Error::invalid("key contains NUL"))?;
        // SAFETY: h is open; the strings are NUL-terminated and outlive the
        // call (libflux copies them into the request and the future).
        let f = unsafe { (self.kvs_lookup)(self.h, ns_c.as_ptr(), 0, key_c.as_ptr()) };
        if f.is_null() {
            return Err(Error::io_msg(format!("kvs lookup {key}: {}", std::io::Error::last_os_error())));
        }
        Ok(Pending { flux: self, f, kvs: true })
    }
}

impl Pending<'_> {
    /// Waits for the response; `Err` carries the errno and the error string
    /// of a failed request.
    pub fn get(self) -> std::result::Result<Option<String>, (i32, String)> {
        let mut s: *const c_char = std::ptr::null();
        let get = if self.kvs { self.flux.kvs_lookup_get } else { self.flux.rpc_get };
        // SAFETY: f is a live future of this handle, of the kind `get`
        // reads; s receives a string owned by f.
        let rc = unsafe { get(self.f, &mut s) };
        if rc < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            return Err((errno, self.flux.future_error(self.f)));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &'static [&'static str]) -> impl Fn(&Path) -> bool {
        move |p: &Path| list.iter().any(|f| Path::new(f) == p)
    }

    fn same(p: &Path) -> PathBuf {
        p.to_path_buf()
    }

    fn paths(c: &[Candidate]) -> Vec<String> {
        c.iter().map(|c| format!("{} <{}>", c.path.display(), c.source)).collect()
    }

    #[test]
    fn override_is_the_only_candidate() {
        let env = FluxEnv {
            libflux: Some("/x/lib".into()),
            connector_path: Some("/opt/flux/lib/flux/connectors".into()),
            ..Default::default()
        };
        let fs = files(&["/x/lib/libflux-core.so.2", "/opt/flux/lib/libflux-core.so.2"]);
        assert_eq!(paths(&libflux_candidates(&env, &fs, &same)), ["/x/lib/libflux-core.so.2 <FLUXACCT_LIBFLUX>"]);
        let env = FluxEnv { libflux: Some("/y/libflux-core.so.2.0.0".into()), ..Default::default() };
        assert_eq!(paths(&libflux_candidates(&env, &fs, &same)), ["/y/libflux-core.so.2.0.0 <FLUXACCT_LIBFLUX>"]);
    }

    #[test]
    fn driver_env_then_path_then_linker_default() {
        let env = FluxEnv {
            connector_path: Some("/opt/flux/lib/flux/connectors".into()),
            exec_path: Some("/home/me/bin:/spack/flux/libexec/flux/cmd".into()),
            path: Some("/usr/bin:/usr/local/bin".into()),
            ..Default::default()
        };
        let fs = files(&[
            "/opt/flux/lib/libflux-core.so.2",
            "/spack/flux/lib64/libflux-core.so.2",
            "/usr/local/bin/flux",
            "/real/lib/libflux-core.so.2",
        ]);
        let resolve = |p: &Path| if p == Path::new("/usr/local/bin/flux") { "/real/bin/flux".into() } else { same(p) };
        assert_eq!(
            paths(&libflux_candidates(&env, &fs, &resolve)),
            [
                "/opt/flux/lib/libflux-core.so.2 <FLUX_CONNECTOR_PATH>",
                "/spack/flux/lib64/libflux-core.so.2 <FLUX_EXEC_PATH>",
                "/real/lib/libflux-core.so.2 <the flux on PATH>",
                "libflux-core.so.2 <the linker's default search>",
            ]
        );
        assert_eq!(
            paths(&libflux_candidates(&FluxEnv::default(), &fs, &same)),
            ["libflux-core.so.2 <the linker's default search>"]
        );
    }

    #[test]
    fn messages_name_what_was_tried() {
        let env = FluxEnv { libflux: Some("/nonexistent/libflux-core.so.2".into()), ..Default::default() };
        let e = Flux::open(&env).err().expect("no library there").to_string();
        assert!(
            e.starts_with(
                "libflux-core.so.2 could not be loaded (tried /nonexistent/libflux-core.so.2 (FLUXACCT_LIBFLUX): "
            ),
            "{e}"
        );
        assert!(!e.contains('\n'));
        let e = Unreachable::NoInstance {
            uri: None,
            lib: Candidate { path: "/opt/lib/libflux-core.so.2".into(), source: "FLUX_EXEC_PATH" },
        };
        assert_eq!(
            e.to_string(),
            "no Flux instance could be reached (FLUX_URI is not set, so the system instance was tried), using /opt/lib/libflux-core.so.2 (FLUX_EXEC_PATH)"
        );
    }
}
