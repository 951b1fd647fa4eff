//! The thin C shim: all of the plugin's `unsafe` lives here.
//!
//! * `flux_plugin_init` is the only exported symbol. It allocates the
//!   plugin's one heap object ([`State`]), hands its ownership to the plugin
//!   handle with `flux_plugin_aux_set` (destructor [`destroy_state`]), sets
//!   the name `mf_priority`, adds the jobtap handlers and registers the
//!   `load_snapshot` and `reprioritize` services and flux-accounting's
//!   `rec_*_update` services, all with that object as their data. Nothing
//!   lives in statics.
//! * Every entry point runs inside `catch_unwind`; a panic becomes a −1
//!   return or an error response, never an unwind into C.
//! * No library is linked: every `flux_*` symbol is left undefined and is
//!   resolved from the broker (libflux-core, job-manager.so) at `dlopen`.
//!   Only functions present in flux-core 0.68 and later are referenced.
//! * IN/OUT arguments go through the non-variadic `flux_plugin_arg_get` /
//!   `flux_plugin_arg_set`; the three variadic calls that have no
//!   alternative are made with fixed formats and C-promoted argument types.
//! * The core is borrowed only while it decides; effects that may call back
//!   into the plugin (removing another job's last dependency, reprioritizing)
//!   run after the borrow ends.

#![allow(non_camel_case_types)]

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use serde_json::{json, Value};

use crate::jobin::JobIn;
use crate::policy::{Decision, Effect, Outcome, Policy};
use crate::{PluginError, EINVAL, EPROTO};

/// `flux_plugin_t`.
#[repr(C)]
pub struct flux_plugin_t {
    _opaque: [u8; 0],
}
/// `flux_plugin_arg_t`.
#[repr(C)]
pub struct flux_plugin_arg_t {
    _opaque: [u8; 0],
}
/// `flux_t`.
#[repr(C)]
pub struct flux_t {
    _opaque: [u8; 0],
}
/// `flux_msg_t`.
#[repr(C)]
pub struct flux_msg_t {
    _opaque: [u8; 0],
}
/// `flux_msg_handler_t`.
#[repr(C)]
pub struct flux_msg_handler_t {
    _opaque: [u8; 0],
}

type flux_plugin_f =
    unsafe extern "C" fn(*mut flux_plugin_t, *const c_char, *mut flux_plugin_arg_t, *mut c_void) -> c_int;
type flux_msg_handler_f = unsafe extern "C" fn(*mut flux_t, *mut flux_msg_handler_t, *const flux_msg_t, *mut c_void);
type flux_free_f = unsafe extern "C" fn(*mut c_void);

extern "C" {
    fn flux_plugin_set_name(p: *mut flux_plugin_t, name: *const c_char) -> c_int;
    fn flux_plugin_add_handler(
        p: *mut flux_plugin_t,
        topic: *const c_char,
        cb: Option<flux_plugin_f>,
        arg: *mut c_void,
    ) -> c_int;
    fn flux_plugin_aux_set(
        p: *mut flux_plugin_t,
        key: *const c_char,
        val: *mut c_void,
        free_fn: Option<flux_free_f>,
    ) -> c_int;
    fn flux_plugin_get_conf(p: *mut flux_plugin_t) -> *const c_char;
    fn flux_plugin_arg_get(args: *mut flux_plugin_arg_t, flags: c_int, json_str: *mut *mut c_char) -> c_int;
    fn flux_plugin_arg_set(args: *mut flux_plugin_arg_t, flags: c_int, json_str: *const c_char) -> c_int;

    fn flux_jobtap_get_flux(p: *mut flux_plugin_t) -> *mut flux_t;
    fn flux_jobtap_service_register(
        p: *mut flux_plugin_t,
        method: *const c_char,
        cb: flux_msg_handler_f,
        arg: *mut c_void,
    ) -> c_int;
    fn flux_jobtap_set_load_sort_order(p: *mut flux_plugin_t, mode: *const c_char) -> c_int;
    fn flux_jobtap_reprioritize_all(p: *mut flux_plugin_t) -> c_int;
    fn flux_jobtap_priority_unavail(p: *mut flux_plugin_t, args: *mut flux_plugin_arg_t) -> c_int;
    fn flux_jobtap_dependency_add(p: *mut flux_plugin_t, id: u64, description: *const c_char) -> c_int;
    fn flux_jobtap_dependency_remove(p: *mut flux_plugin_t, id: u64, description: *const c_char) -> c_int;
    fn flux_jobtap_jobspec_update_pack(p: *mut flux_plugin_t, fmt: *const c_char, ...) -> c_int;
    fn flux_jobtap_event_post_pack(
        p: *mut flux_plugin_t,
        id: u64,
        name: *const c_char,
        fmt: *const c_char,
        ...
    ) -> c_int;
    fn flux_jobtap_raise_exception(
        p: *mut flux_plugin_t,
        id: u64,
        type_: *const c_char,
        severity: c_int,
        fmt: *const c_char,
        ...
    ) -> c_int;

    fn flux_request_decode(msg: *const flux_msg_t, topic: *mut *const c_char, s: *mut *const c_char) -> c_int;
    fn flux_respond(h: *mut flux_t, msg: *const flux_msg_t, s: *const c_char) -> c_int;
    fn flux_respond_error(h: *mut flux_t, msg: *const flux_msg_t, errnum: c_int, errstr: *const c_char) -> c_int;
    fn flux_log(h: *mut flux_t, level: c_int, fmt: *const c_char, ...) -> c_int;

    fn free(ptr: *mut c_void);
}

const FLUX_PLUGIN_ARG_IN: c_int = 0;
const FLUX_PLUGIN_ARG_OUT: c_int = 1;
const LOG_ERR: c_int = 3;
const LOG_INFO: c_int = 6;

/// The plugin's one heap object, owned by the plugin handle.
struct State {
    p: *mut flux_plugin_t,
    core: RefCell<Policy>,
}

/// Jobtap topics handled (all by [`job_cb`]).
const TOPICS: [&CStr; 13] = [
    c"job.validate",
    c"job.new",
    c"job.state.depend",
    c"job.state.priority",
    c"job.priority.get",
    c"job.state.sched",
    c"job.state.run",
    c"job.state.inactive",
    c"job.destroy",
    c"job.update",
    c"job.update.attributes.system.bank",
    c"job.update.attributes.system.queue",
    c"plugin.query",
];

/// A C string from arbitrary text (interior NULs dropped).
fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// Logs through the job manager's handle (`flux_log(h, level, "%s", msg)`).
///
/// # Safety
/// `p` is null or a valid plugin handle.
unsafe fn log(p: *mut flux_plugin_t, level: c_int, msg: &str) {
    let h = if p.is_null() {
        ptr::null_mut()
    } else {
        // SAFETY: `p` is a valid plugin handle (caller's contract).
        unsafe { flux_jobtap_get_flux(p) }
    };
    let m = cstring(msg);
    // SAFETY: a fixed "%s" format with one NUL-terminated string that lives
    // across the call; flux_log accepts a null handle (it logs to stderr).
    unsafe { flux_log(h, level, c"%s".as_ptr(), m.as_ptr()) };
}

/// Runs `f`, turning a panic into `fallback` (and a log line).
fn guard<T>(p: *mut flux_plugin_t, what: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            let _ = catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: `p` is what the job manager passed to the entry
                // point that panicked: null or a valid plugin handle.
                unsafe { log(p, LOG_ERR, &format!("mf_priority: internal error (panic) in {what}")) }
            }));
            fallback
        }
    }
}

/// The jobtap entry point.
///
/// # Safety
/// Called by the job manager with a valid plugin handle.
#[no_mangle]
pub unsafe extern "C" fn flux_plugin_init(p: *mut flux_plugin_t) -> c_int {
    // SAFETY: `p` is the job manager's plugin handle (or null, which `init`
    // refuses).
    guard(p, "flux_plugin_init", -1, || unsafe { init(p) })
}

/// # Safety
/// `p` is null or a valid plugin handle.
unsafe fn init(p: *mut flux_plugin_t) -> c_int {
    if p.is_null() {
        return -1;
    }
    let mut core = Policy::new();
    // The job manager runs in the broker, as the instance owner.
    // SAFETY: getuid has no preconditions and cannot fail.
    let owner = unsafe { libc::getuid() };
    core.set_owner(owner, user_name(owner));
    // SAFETY: `p` is valid; the conf string is owned by the handle.
    let conf = unsafe { flux_plugin_get_conf(p) };
    if !conf.is_null() {
        // SAFETY: non-null, NUL-terminated, alive while the handle is.
        let conf = unsafe { CStr::from_ptr(conf) }.to_string_lossy();
        match crate::snapshot_from_conf(&conf) {
            Ok(Some(snap)) => {
                let head = core.load(snap);
                // SAFETY: `p` is valid.
                unsafe { log(p, LOG_INFO, &format!("mf_priority: loaded snapshot at ledger seq {}", head.seq)) };
            }
            Ok(None) => {}
            Err(e) => {
                // SAFETY: `p` is valid.
                unsafe { log(p, LOG_ERR, &format!("mf_priority: {e}")) };
                return -1;
            }
        }
    }
    let raw = Box::into_raw(Box::new(State { p, core: RefCell::new(core) }));
    // SAFETY: `p` is valid, the key is a static C string, and `raw` is a
    // live heap object that `destroy_state` (its only freer) takes back.
    if unsafe { flux_plugin_aux_set(p, c"mf_priority::state".as_ptr(), raw.cast(), Some(destroy_state)) } < 0 {
        // SAFETY: aux_set failed, so the handle did not take `raw`: it is
        // still ours, from `Box::into_raw` above, and freed only here.
        drop(unsafe { Box::from_raw(raw) });
        return -1;
    }
    // From here on the plugin handle owns `raw`.
    let data: *mut c_void = raw.cast();
    // SAFETY: `p` is valid; static C string.
    if unsafe { flux_jobtap_set_load_sort_order(p, c"-state".as_ptr()) } < 0 {
        // SAFETY: `p` is valid.
        unsafe { log(p, LOG_ERR, "mf_priority: failed to set load sort order") };
    }
    // The name must be set before services are registered.
    // SAFETY: `p` is valid; static C string.
    if unsafe { flux_plugin_set_name(p, c"mf_priority".as_ptr()) } < 0 {
        return -1;
    }
    for t in TOPICS {
        // SAFETY: `p` is valid, `t` static, and `data` outlives every
        // callback (the handle frees it only when it is destroyed).
        if unsafe { flux_plugin_add_handler(p, t.as_ptr(), Some(job_cb), data) } < 0 {
            return -1;
        }
    }
    let services: [(&CStr, flux_msg_handler_f); 8] = [
        (c"load_snapshot", load_snapshot_cb),
        (c"reprioritize", reprioritize_cb),
        (c"rec_update", rpc_update_cb::<0>),
        (c"rec_q_update", rpc_update_cb::<1>),
        (c"rec_proj_update", rpc_update_cb::<2>),
        (c"rec_bank_update", rpc_update_cb::<3>),
        (c"rec_fac_update", rpc_update_cb::<4>),
        (c"rec_config_update", rpc_update_cb::<5>),
    ];
    for (method, cb) in services {
        // SAFETY: as for the handlers above.
        if unsafe { flux_jobtap_service_register(p, method.as_ptr(), cb, data) } < 0 {
            // SAFETY: `p` is valid.
            unsafe { log(p, LOG_ERR, "mf_priority: failed to register service methods") };
            return -1;
        }
    }
    0
}

/// The user name of `uid` from the passwd database, or the uid as text
/// (as flux-accounting names the owner's bank).
fn user_name(uid: u32) -> String {
    let mut buf = vec![0 as c_char; 4096];
    // SAFETY: an all-zero passwd is a valid value to be overwritten.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf outlives the use of
    // pw's string fields below.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pw.pw_name.is_null() {
        return uid.to_string();
    }
    // SAFETY: getpwuid_r succeeded, so pw_name points to a NUL-terminated
    // string inside buf.
    unsafe { CStr::from_ptr(pw.pw_name) }.to_string_lossy().into_owned()
}

unsafe extern "C" fn destroy_state(arg: *mut c_void) {
    guard(ptr::null_mut(), "destructor", (), || {
        if !arg.is_null() {
            // SAFETY: `arg` is the `State` that `init` leaked with
            // `Box::into_raw` and gave the handle; the handle calls this
            // destructor once.
            drop(unsafe { Box::from_raw(arg.cast::<State>()) });
        }
    })
}

/// A `malloc`ed C string, released with `free` when dropped (also on unwind).
struct MallocStr(*mut c_char);

impl Drop for MallocStr {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `flux_plugin_arg_get`, which hands
        // the caller a `malloc`ed string to free; it is freed only here.
        unsafe { free(self.0.cast()) }
    }
}

/// Reads IN (or OUT) arguments as JSON text and hands the text, borrowed
/// from the C string (copied only if it is not valid UTF-8), to `f`. The
/// C string is freed when `f` returns.
///
/// # Safety
/// `args` is null or valid for the current callback.
unsafe fn arg_with<T>(args: *mut flux_plugin_arg_t, flags: c_int, f: impl FnOnce(&str) -> T) -> Option<T> {
    let mut s: *mut c_char = ptr::null_mut();
    // SAFETY: `args` is non-null and valid; `s` is a valid out-pointer.
    if args.is_null() || unsafe { flux_plugin_arg_get(args, flags, &mut s) } < 0 || s.is_null() {
        return None;
    }
    let owned = MallocStr(s);
    // SAFETY: `owned.0` is the non-null, NUL-terminated string just
    // returned, freed only when `owned` drops after `f` has run.
    let text = unsafe { CStr::from_ptr(owned.0) }.to_string_lossy();
    Some(f(&text))
}

/// Merges `v` into the OUT arguments.
///
/// # Safety
/// `args` is null or valid for the current callback.
unsafe fn arg_out(args: *mut flux_plugin_arg_t, v: &Value) -> c_int {
    if args.is_null() {
        return -1;
    }
    let s = cstring(&v.to_string());
    // SAFETY: `args` is non-null and valid; `s` is NUL-terminated and
    // outlives the call (the function copies it).
    unsafe { flux_plugin_arg_set(args, FLUX_PLUGIN_ARG_OUT, s.as_ptr()) }
}

unsafe extern "C" fn job_cb(
    p: *mut flux_plugin_t,
    topic: *const c_char,
    args: *mut flux_plugin_arg_t,
    data: *mut c_void,
) -> c_int {
    let name = if topic.is_null() {
        Cow::Borrowed("")
    } else {
        // SAFETY: the job manager passes a NUL-terminated topic that lives
        // for the callback.
        unsafe { CStr::from_ptr(topic) }.to_string_lossy()
    };
    // SAFETY: the job manager's handle, arguments and the `data` that
    // `init` registered, all valid for this callback.
    guard(p, &name, -1, || unsafe { dispatch(p, &name, args, data) })
}

/// # Safety
/// `p` and `args` are valid for the current callback, and `data` is null
/// or the `State` registered by `init`.
unsafe fn dispatch(p: *mut flux_plugin_t, topic: &str, args: *mut flux_plugin_arg_t, data: *mut c_void) -> c_int {
    if data.is_null() {
        return -1;
    }
    // SAFETY: `data` is the `State` that `init` registered; the handle keeps
    // it alive while callbacks run, and it is only ever shared (`&`).
    let state = unsafe { &*(data as *const State) };
    if topic == "plugin.query" {
        let Ok(core) = state.core.try_borrow() else { return -1 };
        let q = core.query();
        drop(core);
        // SAFETY: `args` is valid for this callback.
        return if unsafe { arg_out(args, &q) } < 0 { -1 } else { 0 };
    }
    // SAFETY: `args` is valid for this callback.
    let input: Option<Value> =
        unsafe { arg_with(args, FLUX_PLUGIN_ARG_IN, |s| serde_json::from_str(s).ok()) }.flatten();
    let job = match input.as_ref().ok_or_else(|| PluginError::Args("no arguments".into())) {
        Ok(v) => JobIn::from_value(v),
        Err(e) => Err(e),
    };
    let job = match job {
        Ok(j) => j,
        Err(e) => {
            // SAFETY: `p` is valid for this callback.
            unsafe { log(p, LOG_ERR, &format!("mf_priority: {topic}: {e}")) };
            if topic == "job.validate" || topic.starts_with("job.update.") {
                // SAFETY: `args` is valid for this callback.
                let _ = unsafe { arg_out(args, &json!({"errmsg": "mf_priority: unable to unpack plugin args"})) };
            }
            return -1;
        }
    };
    let input = input.unwrap_or(Value::Null);
    let Ok(mut core) = state.core.try_borrow_mut() else {
        // SAFETY: `p` is valid for this callback.
        unsafe { log(p, LOG_ERR, &format!("mf_priority: {topic}: re-entered while busy")) };
        return -1;
    };
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        core.set_now(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    }
    let outcome: Outcome = match topic {
        "job.validate" => core.validate(&job),
        "job.new" => core.job_new(&job),
        "job.state.depend" => core.depend(&job),
        "job.state.priority" => core.priority(&job, true),
        "job.priority.get" => core.priority(&job, false),
        "job.state.sched" => core.sched(&job),
        "job.state.run" => core.run(&job),
        "job.state.inactive" | "job.destroy" => core.inactive(job.id),
        "job.update" => core.update(&job, input.get("updates").unwrap_or(&Value::Null)),
        "job.update.attributes.system.bank" => core.update_bank(&job, input.get("value").unwrap_or(&Value::Null)),
        "job.update.attributes.system.queue" => core.update_queue(&job, input.get("value").unwrap_or(&Value::Null)),
        _ => Outcome { decision: Decision::Ok, effects: Vec::new() },
    };
    drop(core);
    // SAFETY: `state.p` is the handle `init` stored, valid while the plugin
    // is loaded.
    unsafe {
        run_effects(state, topic, &outcome.effects);
        log_errors(state);
    }
    match outcome.decision {
        Decision::Ok => 0,
        Decision::Reject(msg) => {
            // SAFETY: `args` is valid for this callback.
            let _ = unsafe { arg_out(args, &json!({ "errmsg": msg })) };
            -1
        }
        Decision::Priority(prio) => {
            // SAFETY: `args` is valid for this callback.
            if unsafe { arg_out(args, &json!({ "priority": prio })) } < 0 {
                -1
            } else {
                0
            }
        }
        // SAFETY: `p` and `args` are valid for this (priority) callback.
        Decision::Unavail => unsafe { flux_jobtap_priority_unavail(p, args) },
        Decision::Fail => -1,
    }
}

/// Carries out effects (core not borrowed: some re-enter the plugin).
///
/// # Safety
/// `state.p` is a valid plugin handle.
unsafe fn run_effects(state: &State, topic: &str, effects: &[Effect]) {
    let p = state.p;
    for e in effects {
        match e {
            Effect::JobspecUpdate { bank, project } => {
                let kb = c"attributes.system.bank";
                let kp = c"attributes.system.project";
                let rc = match (bank, project) {
                    (Some(b), Some(pr)) => {
                        let (b, pr) = (cstring(b), cstring(pr));
                        // SAFETY: `p` is valid; the format has two `s:s`
                        // pairs and gets four NUL-terminated strings that
                        // outlive the call.
                        unsafe {
                            flux_jobtap_jobspec_update_pack(
                                p,
                                c"{s:s, s:s}".as_ptr(),
                                kb.as_ptr(),
                                b.as_ptr(),
                                kp.as_ptr(),
                                pr.as_ptr(),
                            )
                        }
                    }
                    (Some(b), None) => {
                        let b = cstring(b);
                        // SAFETY: `p` is valid; one `s:s` pair, two live C strings.
                        unsafe { flux_jobtap_jobspec_update_pack(p, c"{s:s}".as_ptr(), kb.as_ptr(), b.as_ptr()) }
                    }
                    (None, Some(pr)) => {
                        let pr = cstring(pr);
                        // SAFETY: `p` is valid; one `s:s` pair, two live C strings.
                        unsafe { flux_jobtap_jobspec_update_pack(p, c"{s:s}".as_ptr(), kp.as_ptr(), pr.as_ptr()) }
                    }
                    (None, None) => 0,
                };
                if rc < 0 {
                    // SAFETY: `p` is valid.
                    unsafe {
                        log(p, LOG_ERR, &format!("mf_priority: {topic}: failed to update jobspec with bank/project"))
                    };
                }
            }
            Effect::DependencyAdd { id, dep } => {
                let d = cstring(dep);
                // SAFETY: `p` is valid; `d` is a live C string.
                if unsafe { flux_jobtap_dependency_add(p, *id, d.as_ptr()) } < 0 {
                    // SAFETY: `p` is valid.
                    unsafe { raise(p, *id, &format!("{topic}: failed to add {dep} dependency to job")) };
                }
            }
            Effect::DependencyRemove { id, dep, quiet } => {
                let d = cstring(dep);
                // SAFETY: `p` is valid; `d` is a live C string. This may
                // call back into the plugin: the core is not borrowed here.
                if unsafe { flux_jobtap_dependency_remove(p, *id, d.as_ptr()) } < 0 && !quiet {
                    // SAFETY: `p` is valid.
                    unsafe {
                        raise(
                            p,
                            *id,
                            &format!("check_and_release_held_jobs: failed to remove {dep} dependency from job {id}"),
                        )
                    };
                }
            }
            Effect::AllocationHoldAdd { id, dep } => {
                let d = cstring(dep);
                // SAFETY: `p` is valid; `d` is a live C string.
                if unsafe { flux_jobtap_dependency_add(p, *id, d.as_ptr()) } < 0 {
                    // SAFETY: `p` is valid.
                    unsafe { log(p, LOG_ERR, &format!("mf_priority: {topic}: failed to hold job {id}: {dep}")) };
                }
            }
            Effect::AllocationHoldRemove { id, dep } => {
                let d = cstring(dep);
                // SAFETY: `p` is valid; `d` is a live C string. This may
                // call back into the plugin: the core is not borrowed here.
                if unsafe { flux_jobtap_dependency_remove(p, *id, d.as_ptr()) } < 0 {
                    // SAFETY: `p` is valid.
                    unsafe { log(p, LOG_ERR, &format!("mf_priority: {topic}: failed to release job {id}: {dep}")) };
                }
            }
            Effect::Memo { id, fairshare } => {
                // SAFETY: `p` is valid; the format `{s:f}` gets one C string
                // and one double, as C's variadic promotion expects.
                let rc = unsafe {
                    flux_jobtap_event_post_pack(
                        p,
                        *id,
                        c"memo".as_ptr(),
                        c"{s:f}".as_ptr(),
                        c"fairshare".as_ptr(),
                        *fairshare,
                    )
                };
                if rc < 0 {
                    // SAFETY: `p` is valid.
                    unsafe { log(p, LOG_ERR, &format!("mf_priority: {topic}: failed to post memo event on job {id}")) };
                }
            }
            // SAFETY: `p` is valid.
            Effect::Exception { id, note } => unsafe { raise(p, *id, note) },
        }
    }
}

/// Raises a fatal `mf_priority` exception (`"%s"` format, pre-formatted note).
///
/// # Safety
/// `p` is a valid plugin handle.
unsafe fn raise(p: *mut flux_plugin_t, id: u64, note: &str) {
    let n = cstring(note);
    let sev: c_int = 0;
    // SAFETY: `p` is valid; a fixed "%s" format with one live C string.
    if unsafe { flux_jobtap_raise_exception(p, id, c"mf_priority".as_ptr(), sev, c"%s".as_ptr(), n.as_ptr()) } < 0 {
        // SAFETY: `p` is valid.
        unsafe { log(p, LOG_ERR, &format!("mf_priority: failed to raise exception on job {id}: {note}")) };
    }
}

/// # Safety
/// `h` and `msg` are the handle and request of the current message callback.
unsafe fn respond_error(h: *mut flux_t, msg: *const flux_msg_t, errnum: c_int, text: &str) {
    let t = cstring(text);
    // SAFETY: valid handle and request (caller's contract); `t` is a live C string.
    let _ = unsafe { flux_respond_error(h, msg, errnum, t.as_ptr()) };
}

/// Reprioritizes every pending job, then runs the release pass.
///
/// # Safety
/// `state.p` is a valid plugin handle.
unsafe fn reprioritize_and_release(state: &State) {
    // SAFETY: `state.p` is valid; the core is not borrowed while the job
    // manager calls back into the plugin for each job.
    if unsafe { flux_jobtap_reprioritize_all(state.p) } < 0 {
        // SAFETY: `state.p` is valid.
        unsafe { log(state.p, LOG_ERR, "mf_priority: reprioritize_all failed") };
    }
    let effects = match state.core.try_borrow_mut() {
        Ok(mut core) => core.release_all(),
        Err(_) => return,
    };
    // SAFETY: `state.p` is valid.
    unsafe {
        run_effects(state, "release", &effects);
        log_errors(state);
    }
}

/// Logs (LOG_ERR) the counter underflows the core found.
///
/// # Safety
/// `state.p` is a valid plugin handle.
unsafe fn log_errors(state: &State) {
    let errors = match state.core.try_borrow_mut() {
        Ok(mut core) => core.take_errors(),
        Err(_) => return,
    };
    for e in errors {
        // SAFETY: `state.p` is valid.
        unsafe { log(state.p, LOG_ERR, &e) };
    }
}

unsafe extern "C" fn load_snapshot_cb(
    h: *mut flux_t,
    _mh: *mut flux_msg_handler_t,
    msg: *const flux_msg_t,
    arg: *mut c_void,
) {
    // SAFETY: a non-null `arg` is the `State` that `init` registered with
    // this service, alive while the plugin is loaded.
    let p = if arg.is_null() { ptr::null_mut() } else { unsafe { (*(arg as *const State)).p } };
    guard(p, "load_snapshot", (), || {
        if arg.is_null() {
            // SAFETY: the broker's handle and request for this callback.
            return unsafe { respond_error(h, msg, EINVAL, "mf_priority: no state") };
        }
        // SAFETY: as above; the state is only ever shared (`&`).
        let state = unsafe { &*(arg as *const State) };
        let mut payload: *const c_char = ptr::null();
        // SAFETY: `msg` is the request of this callback; `payload` is a valid
        // out-pointer and the topic out-pointer may be null.
        if unsafe { flux_request_decode(msg, ptr::null_mut(), &mut payload) } < 0 {
            // SAFETY: the broker's handle and request for this callback.
            return unsafe { respond_error(h, msg, EPROTO, "load_snapshot: malformed request") };
        }
        // SAFETY: a non-null payload is NUL-terminated and owned by `msg`,
        // which outlives this callback; it is copied here.
        let payload = (!payload.is_null()).then(|| unsafe { CStr::from_ptr(payload) }.to_string_lossy().into_owned());
        let snap = match crate::snapshot_from_request(payload.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                let text = format!("load_snapshot: {e}");
                // SAFETY: `state.p` is valid; the broker's handle and request.
                unsafe {
                    log(state.p, LOG_ERR, &format!("mf_priority: {text}; keeping the current data"));
                    return respond_error(h, msg, e.errnum(), &text);
                }
            }
        };
        let head = match state.core.try_borrow_mut() {
            Ok(mut core) => core.load(snap),
            // SAFETY: the broker's handle and request for this callback.
            Err(_) => return unsafe { respond_error(h, msg, EINVAL, "load_snapshot: plugin busy") },
        };
        let reply = cstring(&crate::policy::head_json(&head).to_string());
        // SAFETY: `state.p` is valid; the broker's handle and request; `reply`
        // is a live C string (flux_respond copies it).
        unsafe {
            log(state.p, LOG_INFO, &format!("mf_priority: loaded snapshot at ledger seq {}", head.seq));
            reprioritize_and_release(state);
            let _ = flux_respond(h, msg, reply.as_ptr());
        }
    })
}

unsafe extern "C" fn reprioritize_cb(
    h: *mut flux_t,
    _mh: *mut flux_msg_handler_t,
    msg: *const flux_msg_t,
    arg: *mut c_void,
) {
    // SAFETY: a non-null `arg` is the `State` that `init` registered with
    // this service, alive while the plugin is loaded.
    let p = if arg.is_null() { ptr::null_mut() } else { unsafe { (*(arg as *const State)).p } };
    guard(p, "reprioritize", (), || {
        if arg.is_null() {
            // SAFETY: the broker's handle and request for this callback.
            return unsafe { respond_error(h, msg, EINVAL, "mf_priority: no state") };
        }
        // SAFETY: `arg` is the registered `State` (shared only); the broker's
        // handle and request; a null payload is an empty response.
        unsafe {
            reprioritize_and_release(&*(arg as *const State));
            let _ = flux_respond(h, msg, ptr::null());
        }
    })
}

/// flux-accounting's update RPCs: `rpc::METHODS[M]`. Parses the payload,
/// applies it to the core and answers with an empty response, or with an
/// error response (logged) when the payload does not unpack, in which case
/// nothing changed. Never reprioritizes (the `reprioritize` RPC does). A
/// panic in the core is answered with an error too, so the sender never
/// waits for an answer that does not come.
unsafe extern "C" fn rpc_update_cb<const M: usize>(
    h: *mut flux_t,
    _mh: *mut flux_msg_handler_t,
    msg: *const flux_msg_t,
    arg: *mut c_void,
) {
    // SAFETY: a non-null `arg` is the `State` that `init` registered with
    // this service, alive while the plugin is loaded.
    let p = if arg.is_null() { ptr::null_mut() } else { unsafe { (*(arg as *const State)).p } };
    let method = crate::rpc::METHODS.get(M).copied().unwrap_or("rec_update");
    let internal = || (EINVAL, format!("{method}: mf_priority internal error"));
    let result: Result<(), (c_int, String)> = guard(p, method, Err(internal()), || {
        if arg.is_null() {
            return Err((EINVAL, "mf_priority: no state".to_string()));
        }
        // SAFETY: as above; the state is only ever shared (`&`).
        let state = unsafe { &*(arg as *const State) };
        let mut payload: *const c_char = ptr::null();
        // SAFETY: `msg` is the request of this callback; `payload` is a valid
        // out-pointer and the topic out-pointer may be null. On failure
        // `payload` stays null, which `parse` refuses.
        let _ = unsafe { flux_request_decode(msg, ptr::null_mut(), &mut payload) };
        // SAFETY: a non-null payload is NUL-terminated and owned by `msg`,
        // which outlives this callback; it is copied here.
        let payload = (!payload.is_null()).then(|| unsafe { CStr::from_ptr(payload) }.to_string_lossy().into_owned());
        let update = match crate::rpc::parse(method, payload.as_deref()) {
            Ok(u) => u,
            Err(e) => {
                // SAFETY: `state.p` is valid.
                unsafe { log(state.p, LOG_ERR, &e.text) };
                return Err((e.errnum, e.text));
            }
        };
        match state.core.try_borrow_mut() {
            Ok(mut core) => core.apply_rpc(update),
            Err(_) => return Err((EINVAL, format!("{method}: plugin busy"))),
        }
        // SAFETY: `state.p` is valid.
        unsafe { log_errors(state) };
        Ok(())
    });
    guard(p, method, (), || match result {
        Ok(()) => {
            // SAFETY: the broker's handle and request for this callback; a
            // null payload is an empty response.
            let _ = unsafe { flux_respond(h, msg, ptr::null()) };
        }
        // SAFETY: the broker's handle and request for this callback.
        Err((errnum, text)) => unsafe { respond_error(h, msg, errnum, &text) },
    })
}
