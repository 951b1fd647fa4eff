//! The libflux-core calls, loaded at run time: every `unsafe` block of
//! the crate. The prototypes are flux-core 0.88's
//! (`src/common/libflux/{handle,rpc,future}.h`, `src/common/libkvs/kvs_lookup.h`).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;

use crate::discover::{libflux_candidates, FluxEnv, Unreachable};
use crate::error::{Error, Result};

type FluxOpen = unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void;
type FluxClose = unsafe extern "C" fn(*mut c_void);
type FluxRpc = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, u32, c_int) -> *mut c_void;
type FluxRpcGet = unsafe extern "C" fn(*mut c_void, *mut *const c_char) -> c_int;
type FluxFutureErrorString = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type FluxFutureVoid = unsafe extern "C" fn(*mut c_void);
type FluxKvsLookup = unsafe extern "C" fn(*mut c_void, *const c_char, c_int, *const c_char) -> *mut c_void;
type FluxKvsLookupGet = unsafe extern "C" fn(*mut c_void, *mut *const c_char) -> c_int;
type FluxService = unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_void;
type FluxFutureGet = unsafe extern "C" fn(*mut c_void, *mut *const c_void) -> c_int;
type FluxFutureWaitFor = unsafe extern "C" fn(*mut c_void, f64) -> c_int;
type FluxRecv = unsafe extern "C" fn(*mut c_void, Match, c_int) -> *mut c_void;
type FluxMsgDestroy = unsafe extern "C" fn(*mut c_void);
type FluxRequestDecode = unsafe extern "C" fn(*const c_void, *mut *const c_char, *mut *const c_char) -> c_int;
type FluxMsgGetU32 = unsafe extern "C" fn(*const c_void, *mut u32) -> c_int;
type FluxRespond = unsafe extern "C" fn(*mut c_void, *const c_void, *const c_char) -> c_int;
type FluxRespondError = unsafe extern "C" fn(*mut c_void, *const c_void, c_int, *const c_char) -> c_int;
type FluxPoll = unsafe extern "C" fn(*mut c_void) -> c_int;

/// `struct flux_match` (message.h), passed by value to `flux_recv`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Match {
    typemask: c_int,
    matchtag: u32,
    topic_glob: *const c_char,
}

/// `FLUX_MSGTYPE_REQUEST`.
const MSGTYPE_REQUEST: c_int = 1;
/// `FLUX_O_NONBLOCK`.
const O_NONBLOCK: c_int = 4;
/// `FLUX_MATCHTAG_NONE`.
const MATCHTAG_NONE: u32 = 0;
/// Linux `EPROTO`.
const EPROTO: i32 = 71;

/// `FLUX_NODEID_ANY`.
const NODEID_ANY: u32 = 0xFFFF_FFFF;
/// `FLUX_RPC_STREAMING`.
const RPC_STREAMING: c_int = 2;
/// Linux `ENODATA`: the end of a streaming response.
pub const ENODATA: i32 = 61;
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
    wait_for: FluxFutureWaitFor,
    kvs_lookup: FluxKvsLookup,
    kvs_lookup_get: FluxKvsLookupGet,
    service: ServiceFns,
}

/// The calls a service makes.
#[derive(Clone, Copy)]
struct ServiceFns {
    register: FluxService,
    unregister: FluxService,
    future_get: FluxFutureGet,
    recv: FluxRecv,
    msg_destroy: FluxMsgDestroy,
    request_decode: FluxRequestDecode,
    get_userid: FluxMsgGetU32,
    get_rolemask: FluxMsgGetU32,
    respond: FluxRespond,
    respond_error: FluxRespondError,
    pollfd: FluxPoll,
    pollevents: FluxPoll,
}

fn sym<T: Copy>(lib: &libloading::Library, name: &[u8]) -> std::result::Result<T, String> {
    // SAFETY: the symbol types above match flux-core's prototypes
    // (src/common/libflux/{handle,rpc,future,message,request,response,service}.h).
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
        let euid = nix::unistd::geteuid().as_raw();
        for c in libflux_candidates(env, &exists, &resolve) {
            // The linker's default search is root's own configuration;
            // every other candidate was named by the environment.
            if c.path.components().count() > 1 {
                if let Err(why) = crate::discover::root_may_load(&c.path, euid) {
                    return Err(Unreachable::Untrusted { lib: c, why });
                }
            }
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
        let wait_for: FluxFutureWaitFor = sym(&lib, b"flux_future_wait_for\0")?;
        let kvs_lookup: FluxKvsLookup = sym(&lib, b"flux_kvs_lookup\0")?;
        let kvs_lookup_get: FluxKvsLookupGet = sym(&lib, b"flux_kvs_lookup_get\0")?;
        let service = ServiceFns {
            register: sym(&lib, b"flux_service_register\0")?,
            unregister: sym(&lib, b"flux_service_unregister\0")?,
            future_get: sym(&lib, b"flux_future_get\0")?,
            recv: sym(&lib, b"flux_recv\0")?,
            msg_destroy: sym(&lib, b"flux_msg_destroy\0")?,
            request_decode: sym(&lib, b"flux_request_decode\0")?,
            get_userid: sym(&lib, b"flux_msg_get_userid\0")?,
            get_rolemask: sym(&lib, b"flux_msg_get_rolemask\0")?,
            respond: sym(&lib, b"flux_respond\0")?,
            respond_error: sym(&lib, b"flux_respond_error\0")?,
            pollfd: sym(&lib, b"flux_pollfd\0")?,
            pollevents: sym(&lib, b"flux_pollevents\0")?,
        };
        // SAFETY: NULL uri means $FLUX_URI or the system instance.
        let h = unsafe { open(std::ptr::null(), 0) };
        if h.is_null() {
            return Ok(None);
        }
        Ok(Some(Flux {
            _lib: lib,
            h,
            close,
            rpc,
            rpc_get,
            error_string,
            reset,
            destroy,
            wait_for,
            kvs_lookup,
            kvs_lookup_get,
            service,
        }))
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
        self.rpc_unless(topic, payload, 0)?.ok_or_else(|| Error::msg(format!("{topic}: no response")))
    }

    /// [`Flux::rpc`], except that an error response with errno `absent`
    /// gives `Ok(None)` (e.g. `ENOENT` from `job-info.lookup` for a job
    /// whose data is gone). Any other failure, such as the broker going
    /// away, is an error.
    pub fn rpc_unless(&self, topic: &str, payload: Option<&str>, absent: i32) -> Result<Option<Option<String>>> {
        self.rpc_within(topic, payload, absent, None)
    }

    /// [`Flux::rpc`] that gives up when no response came within `timeout`
    /// (`flux_future_wait_for`): an error with errno `ETIMEDOUT`
    /// ([`Error::timed_out`]), so that a service that died or hangs does
    /// not hang its client.
    pub fn rpc_timeout(
        &self,
        topic: &str,
        payload: Option<&str>,
        timeout: std::time::Duration,
    ) -> Result<Option<String>> {
        self.rpc_within(topic, payload, 0, Some(timeout))?.ok_or_else(|| Error::msg(format!("{topic}: no response")))
    }

    fn rpc_within(
        &self,
        topic: &str,
        payload: Option<&str>,
        absent: i32,
        timeout: Option<std::time::Duration>,
    ) -> Result<Option<Option<String>>> {
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
        if let Some(t) = timeout {
            // SAFETY: f is a live future of this handle; waiting does not
            // consume it.
            let rc = unsafe { (self.wait_for)(f, t.as_secs_f64()) };
            if rc < 0 {
                let err = std::io::Error::last_os_error();
                // SAFETY: f is destroyed exactly once (not used below).
                unsafe { (self.destroy)(f) };
                return Err(if err.raw_os_error() == Some(libc::ETIMEDOUT) {
                    Error::timed_out(topic, t)
                } else {
                    Error::io(topic, err)
                });
            }
        }
        let mut s: *const c_char = std::ptr::null();
        // SAFETY: f is a live future; s receives a string owned by f.
        let rc = unsafe { (self.rpc_get)(f, &mut s) };
        let out = if rc < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if absent != 0 && errno == absent {
                Ok(None)
            } else {
                Err(Error::response(format!("{topic}: {}", self.future_error(f)), errno))
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
        for response in self.rpc_streaming(topic, Some(payload))? {
            if let Some(text) = response? {
                each(&text)?;
            }
        }
        Ok(())
    }

    /// Sends a request with `FLUX_RPC_STREAMING`: the service answers with
    /// any number of responses, then an error response, `ENODATA` for a
    /// normal end. The [`Stream`] yields them one by one.
    pub fn rpc_streaming(&self, topic: &str, payload: Option<&str>) -> Result<Stream<'_>> {
        let topic_c = CString::new(topic).map_err(|_| Error::invalid("topic contains NUL"))?;
        let payload_c = payload.map(CString::new).transpose().map_err(|_| Error::invalid("payload contains NUL"))?;
        // SAFETY: h is open; the strings are NUL-terminated and outlive the
        // call (libflux copies them into the request message).
        let f = unsafe {
            (self.rpc)(
                self.h,
                topic_c.as_ptr(),
                payload_c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
                NODEID_ANY,
                RPC_STREAMING,
            )
        };
        if f.is_null() {
            return Err(Error::io(topic, std::io::Error::last_os_error()));
        }
        Ok(Stream { flux: self, f, topic: topic.to_string(), ended: false })
    }
}

/// The responses to a streaming request, in order: each item is one
/// response's payload (`None`: a response without one), or the error
/// response that ended the stream (its errno in [`Error::errno`]). The
/// end-of-stream response (`ENODATA`) ends the iteration without an item.
/// Reading waits for the next response (`flux_rpc_get`; the future is then
/// reset for the one after). Dropping the stream destroys the request's
/// future.
pub struct Stream<'f> {
    flux: &'f Flux,
    f: *mut c_void,
    topic: String,
    /// The stream has ended (ENODATA or an error response).
    ended: bool,
}

impl Iterator for Stream<'_> {
    type Item = Result<Option<String>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let mut s: *const c_char = std::ptr::null();
        // SAFETY: f is a live RPC future of this handle; s receives a
        // string owned by f, valid until the future is reset.
        let rc = unsafe { (self.flux.rpc_get)(self.f, &mut s) };
        if rc < 0 {
            self.ended = true;
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if errno == ENODATA {
                return None;
            }
            return Some(Err(Error::response(format!("{}: {}", self.topic, self.flux.future_error(self.f)), errno)));
        }
        let text = if s.is_null() {
            None
        } else {
            // SAFETY: s is NUL-terminated and valid until the reset below.
            Some(unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned())
        };
        // SAFETY: f is live; the reset drops the response read above
        // (copied into `text`) and prepares f for the next one.
        unsafe { (self.flux.reset)(self.f) };
        Some(Ok(text))
    }
}

impl Drop for Stream<'_> {
    fn drop(&mut self) {
        // SAFETY: f was returned by flux_rpc and is destroyed exactly once.
        unsafe { (self.flux.destroy)(self.f) };
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
            return Err(Error::msg(format!("{topic}: {}", std::io::Error::last_os_error())));
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
            return Err(Error::msg(format!("kvs lookup {key}: {}", std::io::Error::last_os_error())));
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

// A service: the handle registers a name with the broker, receives the
// requests sent to `<name>.*` and answers each one.

/// A service name registered by this handle (`flux_service_register`):
/// requests to `<name>.<method>` are received, in order, with
/// [`Service::recv`]. Dropping it unregisters the name.
pub struct Service<'f> {
    flux: &'f Flux,
    name: CString,
    glob: CString,
}

/// A request received by a [`Service`]: its topic, payload and the
/// requester's credentials (from the message, as the broker stamped
/// them). Answer it once, with [`Request::respond`] or
/// [`Request::respond_error`].
pub struct Request<'s> {
    flux: &'s Flux,
    msg: *mut c_void,
    topic: String,
    payload: Option<String>,
    userid: u32,
    rolemask: u32,
}

impl Flux {
    /// Waits for a future with no value (`flux_future_get`), then destroys it.
    fn future_wait(&self, f: *mut c_void, what: &str) -> Result<()> {
        // SAFETY: f is a live future of this handle; no value is read.
        let rc = unsafe { (self.service.future_get)(f, std::ptr::null_mut()) };
        let out = if rc < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            Err(Error::response(format!("{what}: {}", self.future_error(f)), errno))
        } else {
            Ok(())
        };
        // SAFETY: f is destroyed exactly once.
        unsafe { (self.destroy)(f) };
        out
    }

    /// Registers the service `name` (no `.` in it) for this handle and
    /// waits for the broker to accept it (`EEXIST`: another handle has it).
    pub fn register_service(&self, name: &str) -> Result<Service<'_>> {
        if name.is_empty() || name.contains('.') {
            return Err(Error::invalid(format!("service name {name:?} is empty or contains '.'")));
        }
        let name_c = CString::new(name).map_err(|_| Error::invalid("service name contains NUL"))?;
        let glob = CString::new(format!("{name}.*")).map_err(|_| Error::invalid("service name contains NUL"))?;
        // SAFETY: h is open; the name is NUL-terminated and outlives the call.
        let f = unsafe { (self.service.register)(self.h, name_c.as_ptr()) };
        if f.is_null() {
            return Err(Error::io(format!("register service {name}"), std::io::Error::last_os_error()));
        }
        self.future_wait(f, &format!("register service {name}"))?;
        Ok(Service { flux: self, name: name_c, glob })
    }
}

impl Service<'_> {
    /// Waits for the next request to this service. A request whose
    /// payload is not a string is answered with `EPROTO` here and skipped.
    pub fn recv(&self) -> Result<Request<'_>> {
        loop {
            if let Some(req) = self.recv_flags(0)? {
                return Ok(req);
            }
        }
    }

    /// Waits at most `timeout` for the next request to this service:
    /// `None` when none came. Lets the thread that owns the handle do
    /// other work between requests (answer requests that worker threads
    /// finished) while keeping every libflux call on that thread.
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Result<Option<Request<'_>>> {
        let flux = self.flux;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(req) = self.recv_flags(O_NONBLOCK)? {
                return Ok(Some(req));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // SAFETY: h is open; flux_pollfd returns a descriptor owned by
            // the handle, valid while it is open.
            let fd = unsafe { (flux.service.pollfd)(flux.h) };
            if fd < 0 {
                return Err(Error::io("poll the handle", std::io::Error::last_os_error()));
            }
            let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as c_int;
            // SAFETY: pfd is one live pollfd; poll only writes its revents.
            unsafe { libc::poll(&mut pfd, 1, ms) };
            // SAFETY: h is open; this re-arms the edge-triggered pollfd.
            unsafe { (flux.service.pollevents)(flux.h) };
        }
    }

    /// One `flux_recv` with `flags`: `None` when `FLUX_O_NONBLOCK` found
    /// nothing waiting, or a request that could not be decoded was
    /// answered with `EPROTO` and skipped.
    fn recv_flags(&self, flags: c_int) -> Result<Option<Request<'_>>> {
        let flux = self.flux;
        let m = Match { typemask: MSGTYPE_REQUEST, matchtag: MATCHTAG_NONE, topic_glob: self.glob.as_ptr() };
        // SAFETY: h is open; the glob is NUL-terminated and outlives the call.
        let msg = unsafe { (flux.service.recv)(flux.h, m, flags) };
        if msg.is_null() {
            let e = std::io::Error::last_os_error();
            if flags & O_NONBLOCK != 0 && e.kind() == std::io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(Error::io("receive a request", e));
        }
        let mut topic: *const c_char = std::ptr::null();
        let mut s: *const c_char = std::ptr::null();
        let (mut userid, mut rolemask) = (u32::MAX, 0u32);
        // SAFETY: msg is a live message; topic and s receive strings
        // owned by it; userid and rolemask are written in place.
        let decoded = unsafe {
            (flux.service.request_decode)(msg, &mut topic, &mut s) == 0
                && (flux.service.get_userid)(msg, &mut userid) == 0
                && (flux.service.get_rolemask)(msg, &mut rolemask) == 0
                && !topic.is_null()
        };
        let mut req = Request { flux, msg, topic: String::new(), payload: None, userid, rolemask };
        if !decoded {
            req.respond_error(EPROTO, "the request cannot be decoded")?;
            return Ok(None);
        }
        // SAFETY: topic and s (when not NULL) are NUL-terminated and
        // valid while msg lives; they are copied here.
        unsafe {
            req.topic = CStr::from_ptr(topic).to_string_lossy().into_owned();
            req.payload = (!s.is_null()).then(|| CStr::from_ptr(s).to_string_lossy().into_owned());
        }
        Ok(Some(req))
    }
}

impl Drop for Service<'_> {
    fn drop(&mut self) {
        // SAFETY: h is open; the name is NUL-terminated and outlives the call.
        let f = unsafe { (self.flux.service.unregister)(self.flux.h, self.name.as_ptr()) };
        if !f.is_null() {
            // Nothing to do about a failure here: the broker drops the
            // registration when the handle closes anyway.
            let _ = self.flux.future_wait(f, "unregister service");
        }
    }
}

impl Request<'_> {
    /// The request's topic (`<service>.<method>`).
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The request's payload, if it has one.
    pub fn payload(&self) -> Option<&str> {
        self.payload.as_deref()
    }

    /// The requester's user id.
    pub fn userid(&self) -> u32 {
        self.userid
    }

    /// The requester's roles ([`ROLE_OWNER`], [`ROLE_USER`], ... OR-ed).
    pub fn rolemask(&self) -> u32 {
        self.rolemask
    }

    /// Answers the request with `payload` (`flux_respond`).
    pub fn respond(self, payload: Option<&str>) -> Result<()> {
        let payload_c = payload.map(CString::new).transpose().map_err(|_| Error::invalid("payload contains NUL"))?;
        // SAFETY: h is open and msg is the live request; the payload is
        // NUL-terminated (or NULL) and outlives the call.
        let rc = unsafe {
            (self.flux.service.respond)(
                self.flux.h,
                self.msg,
                payload_c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            )
        };
        if rc < 0 {
            return Err(Error::io(format!("respond to {}", self.topic), std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Answers the request with an error: `errno` and a one-line message
    /// (`flux_respond_error`).
    pub fn respond_error(&self, errno: i32, message: &str) -> Result<()> {
        let msg_c = CString::new(message).map_err(|_| Error::invalid("error message contains NUL"))?;
        // SAFETY: h is open and msg is the live request; the message is
        // NUL-terminated and outlives the call.
        let rc = unsafe { (self.flux.service.respond_error)(self.flux.h, self.msg, errno, msg_c.as_ptr()) };
        if rc < 0 {
            return Err(Error::io(format!("respond to {}", self.topic), std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        // SAFETY: msg was returned by flux_recv and is destroyed exactly once.
        unsafe { (self.flux.service.msg_destroy)(self.msg) };
    }
}

/// `FLUX_ROLE_OWNER`: the instance owner.
pub const ROLE_OWNER: u32 = 1;
/// `FLUX_ROLE_USER`: a guest user.
pub const ROLE_USER: u32 = 2;
