//! A jobtap host for testing `mf_priority.so` without Flux.
//!
//! How it fits together:
//! * `tests/build.rs` compiles `tests/jobtap-host/host.c` into
//!   `libjobtap_host.so`, which defines every `flux_*` / `flux_jobtap_*`
//!   symbol the plugin uses (the variadic ones need C) and forwards each into
//!   a Rust function registered here with `jobtap_host_set`.
//! * [`plugin_path`] builds the plugin in release mode as the README's
//!   install does (`cargo build -p fluxacct-plugin --release`, into
//!   `<target>/plugin` so as not to wait on the test run's target lock; the
//!   plugin depends only on `fluxacct-core`, so this resolves the same crates
//!   and features as the workspace build), once per test process, and
//!   returns `.../release/libmf_priority.so`.
//! * The host library is dlopen'ed with `RTLD_GLOBAL`, then the plugin with
//!   `RTLD_NOW | RTLD_LOCAL` as the job manager does, so the plugin's
//!   undefined `flux_*` symbols resolve against the host.
//! * A [`Host`] plays the job manager: one plugin handle (the pointer the
//!   plugin sees is the host's own context), jobs driven through NEW, DEPEND,
//!   PRIORITY, SCHED, RUN, CLEANUP and INACTIVE as jobtap-abi.md describes,
//!   with transitions of the job in a callback deferred until the callback
//!   returns and transitions of other jobs (removing their last dependency)
//!   processed synchronously. It records priorities, rejections,
//!   dependencies and posted events, and protocol anomalies (a priority that
//!   is not a JSON integer, a service registered before the name was set, …).
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

/// `FLUX_JOB_STATE_*`: one home, in the core crate.
pub use fluxacct_core::job_state::{CLEANUP, DEPEND, INACTIVE, NEW, PRIORITY, RUN, SCHED};

type PluginCb = unsafe extern "C" fn(*mut c_void, *const c_char, *mut c_void, *mut c_void) -> c_int;
type MsgCb = unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_void, *mut c_void);
type FreeFn = unsafe extern "C" fn(*mut c_void);
type InitFn = unsafe extern "C" fn(*mut c_void) -> c_int;
type SetFn = unsafe extern "C" fn(*const c_char, *mut c_void) -> c_int;

fn state_name(s: u32) -> &'static str {
    match s {
        NEW => "new",
        DEPEND => "depend",
        PRIORITY => "priority",
        SCHED => "sched",
        RUN => "run",
        CLEANUP => "cleanup",
        INACTIVE => "inactive",
        _ => "unknown",
    }
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the workspace").to_path_buf()
}

/// Builds the plugin (once per process) and returns the path of the built
/// `libmf_priority.so`: `cargo build -p fluxacct-plugin --release
/// --target-dir <target>/plugin`, where `<target>` is `$CARGO_TARGET_DIR`
/// or `<workspace>/target`.
pub fn plugin_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let ws = workspace();
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(t) if Path::new(&t).is_absolute() => PathBuf::from(t),
            Some(t) => ws.join(t),
            None => ws.join("target"),
        }
        .join("plugin");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "fluxacct-plugin", "--release", "--target-dir"])
            .arg(&target)
            .current_dir(&ws)
            .status()
            .expect("running cargo build for the plugin");
        assert!(status.success(), "cargo build -p fluxacct-plugin --release failed");
        target.join("release").join("libmf_priority.so")
    })
}

struct Libs {
    _host: libloading::Library,
    _plugin: libloading::Library,
    init: InitFn,
}

fn libs() -> &'static Libs {
    static LIBS: OnceLock<Libs> = OnceLock::new();
    LIBS.get_or_init(|| unsafe {
        use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_LOCAL, RTLD_NOW};
        let host = Library::open(Some(env!("JOBTAP_HOST_SO")), RTLD_NOW | RTLD_GLOBAL).expect("dlopen jobtap host");
        let set: libloading::os::unix::Symbol<SetFn> = host.get(b"jobtap_host_set\0").expect("jobtap_host_set");
        let table: [(&CStr, *mut c_void); 21] = [
            (c"set_name", h_set_name as *mut c_void),
            (c"add_handler", h_add_handler as *mut c_void),
            (c"aux_set", h_aux_set as *mut c_void),
            (c"aux_get", h_aux_get as *mut c_void),
            (c"get_conf", h_get_conf as *mut c_void),
            (c"arg_get", h_arg_get as *mut c_void),
            (c"arg_set", h_arg_set as *mut c_void),
            (c"get_flux", h_get_flux as *mut c_void),
            (c"service_register", h_service_register as *mut c_void),
            (c"set_load_sort_order", h_set_load_sort_order as *mut c_void),
            (c"reprioritize_all", h_reprioritize_all as *mut c_void),
            (c"priority_unavail", h_priority_unavail as *mut c_void),
            (c"dependency_add", h_dependency_add as *mut c_void),
            (c"dependency_remove", h_dependency_remove as *mut c_void),
            (c"jobspec_update", h_jobspec_update as *mut c_void),
            (c"event_post", h_event_post as *mut c_void),
            (c"raise_exception", h_raise_exception as *mut c_void),
            (c"request_decode", h_request_decode as *mut c_void),
            (c"respond", h_respond as *mut c_void),
            (c"respond_error", h_respond_error as *mut c_void),
            (c"log", h_log as *mut c_void),
        ];
        for (name, f) in table {
            assert_eq!(set(name.as_ptr(), f), 0, "jobtap_host_set {name:?}");
        }
        let plugin = Library::open(Some(plugin_path()), RTLD_NOW | RTLD_LOCAL).expect("dlopen mf_priority.so");
        let init: libloading::os::unix::Symbol<InitFn> = plugin.get(b"flux_plugin_init\0").expect("flux_plugin_init");
        let init = *init;
        Libs { _host: host.into(), _plugin: plugin.into(), init }
    })
}

/// One job as the host sees it.
#[derive(Debug, Clone)]
pub struct Job {
    /// Job id.
    pub id: u64,
    /// Submitting user.
    pub userid: u32,
    /// Urgency.
    pub urgency: i64,
    /// State (`NEW` … `INACTIVE`).
    pub state: u32,
    /// Priority, −1 until assigned.
    pub priority: i64,
    /// Current jobspec (jobspec updates applied).
    pub jobspec: Value,
    /// Current dependencies.
    pub deps: BTreeSet<String>,
    /// Dependencies removed once (cannot be re-established).
    pub grudge: BTreeSet<String>,
    /// Events: (name, context).
    pub events: Vec<(String, Value)>,
    /// Fatal exception note.
    pub fatal: Option<String>,
    depend_done: bool,
    prio_ready: bool,
    alloc: bool,
}

impl Job {
    /// Contexts of the events named `name`.
    pub fn events_named(&self, name: &str) -> Vec<Value> {
        self.events.iter().filter(|(n, _)| n == name).map(|(_, c)| c.clone()).collect()
    }
}

struct Args {
    input: Value,
    out: Value,
    last: CString,
}

/// A service response: a payload (or none), or (errno, error text).
type Response = Result<Option<String>, (i32, String)>;

struct Msg {
    topic: CString,
    payload: Option<CString>,
    response: RefCell<Option<Response>>,
    /// Set by a second `flux_respond*` on this message. The host callbacks
    /// only record it (a panic there would abort the test binary);
    /// `service_raw` asserts on it.
    responded_twice: Cell<bool>,
}

#[derive(Default)]
struct St {
    path: String,
    name: String,
    conf: Option<CString>,
    handlers: Vec<(String, PluginCb, *mut c_void)>,
    aux: Vec<(Option<String>, *mut c_void, Option<FreeFn>)>,
    services: Vec<(String, MsgCb, *mut c_void)>,
    sort_order: String,
    jobs: BTreeMap<u64, Job>,
    current: Vec<u64>,
    pending_update: BTreeMap<u64, Map<String, Value>>,
    log: Vec<(i32, String)>,
    anomalies: Vec<String>,
    next_id: u64,
    clock: f64,
}

/// The host context; its address is the `flux_plugin_t *` (and `flux_t *`)
/// the plugin sees.
pub struct Ctx {
    st: RefCell<St>,
}

/// A job manager with one `mf_priority.so` loaded.
pub struct Host {
    ctx: Box<Ctx>,
}

unsafe fn ctx<'a>(p: *mut c_void) -> &'a Ctx {
    &*(p as *const Ctx)
}

unsafe fn cstr(s: *const c_char) -> String {
    if s.is_null() {
        String::new()
    } else {
        CStr::from_ptr(s).to_string_lossy().into_owned()
    }
}

fn glob_match(pat: &str, s: &str) -> bool {
    match pat.find('*') {
        None => pat == s,
        Some(i) => {
            let (pre, post) = (&pat[..i], &pat[i + 1..]);
            s.starts_with(pre) && s.len() >= pre.len() && glob_match_suffix(post, &s[pre.len()..])
        }
    }
}

fn glob_match_suffix(pat: &str, s: &str) -> bool {
    (0..=s.len()).any(|k| s.is_char_boundary(k) && glob_match(pat, &s[k..]))
}

fn set_dotted(v: &mut Value, key: &str, val: Value) {
    let mut cur = v;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let obj = cur.as_object_mut().expect("object");
        if i == parts.len() - 1 {
            obj.insert(part.to_string(), val);
            return;
        }
        cur = obj.entry(part.to_string()).or_insert_with(|| json!({}));
    }
}

/// A jobspec with `ncores` cores (in one slot), on `nnodes` nodes if
/// `nnodes > 0`, and the given `attributes.system` strings.
pub fn jobspec(nnodes: u64, ncores: u64, system: &[(&str, &str)]) -> Value {
    let slot = json!({"type": "slot", "count": 1, "label": "task", "with": [{"type": "core", "count": ncores}]});
    let resources = if nnodes > 0 { json!([{"type": "node", "count": nnodes, "with": [slot]}]) } else { json!([slot]) };
    let mut sys = json!({"duration": 0});
    for (k, v) in system {
        sys[*k] = json!(v);
    }
    json!({"version": 1, "resources": resources,
           "tasks": [{"command": ["true"], "slot": "task", "count": {"per_slot": 1}}],
           "attributes": {"system": sys}})
}

impl Ctx {
    fn p(&self) -> *mut c_void {
        self as *const Ctx as *mut c_void
    }

    fn anomaly(&self, s: String) {
        self.st.borrow_mut().anomalies.push(s);
    }

    fn job_in(&self, id: u64) -> Option<Value> {
        let st = self.st.borrow();
        let j = st.jobs.get(&id)?;
        let mut v = json!({"jobspec": j.jobspec, "id": id, "userid": j.userid, "urgency": j.urgency,
                           "state": j.state, "priority": j.priority, "t_submit": 1.0});
        if j.alloc {
            v["R"] = json!({"version": 1, "execution": {"R_lite": []}});
        }
        Some(v)
    }

    /// Calls the plugin's first handler matching `topic`. Returns
    /// `None` if no handler matches, else (rc, OUT).
    fn call(&self, topic: &str, id: Option<u64>, extra: Value, out: Value, honour_out: bool) -> Option<(i32, Value)> {
        let (cb, data) = {
            let st = self.st.borrow();
            let h = st.handlers.iter().find(|(t, _, _)| glob_match(t, topic))?;
            (h.1, h.2)
        };
        let mut input = match id {
            Some(id) => self.job_in(id).unwrap_or(json!({})),
            None => json!({}),
        };
        if let (Some(obj), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        let rc = self.invoke(cb, data, topic, id, input, out);
        let (rc, out) = rc;
        if let Some(id) = id {
            if honour_out {
                self.apply_out(id, topic, &out);
            }
            self.flush_update(id);
        }
        Some((rc, out))
    }

    fn invoke(
        &self,
        cb: PluginCb,
        data: *mut c_void,
        topic: &str,
        id: Option<u64>,
        input: Value,
        out: Value,
    ) -> (i32, Value) {
        let mut args = Box::new(Args { input, out, last: CString::default() });
        if let Some(id) = id {
            self.st.borrow_mut().current.push(id);
        }
        let t = CString::new(topic).expect("topic");
        let rc = unsafe { cb(self.p(), t.as_ptr(), (&mut *args as *mut Args).cast(), data) };
        if id.is_some() {
            self.st.borrow_mut().current.pop();
        }
        (rc, args.out.clone())
    }

    fn apply_out(&self, id: u64, topic: &str, out: &Value) {
        let Some(p) = out.get("priority") else { return };
        let Some(p) = p.as_i64().filter(|_| p.is_i64() || p.is_u64()) else {
            self.anomaly(format!("{topic}: arg_unpack: priority is not an integer: {p}"));
            return;
        };
        let state = self.st.borrow().jobs.get(&id).map(|j| j.state).unwrap_or(0);
        if p == -2 {
            if state == SCHED {
                self.anomaly(format!("{topic}: BUG: plugin didn't return priority for job {id}"));
            }
            return;
        }
        if p < 0 {
            return;
        }
        if state != PRIORITY && state != SCHED {
            return;
        }
        let mut st = self.st.borrow_mut();
        let Some(j) = st.jobs.get_mut(&id) else { return };
        let p = match j.urgency {
            0 => 0,
            31 => 4_294_967_295,
            _ => p,
        };
        if j.priority != p || state == PRIORITY {
            j.events.push(("priority".into(), json!({ "priority": p })));
        }
        j.priority = p;
        if state == PRIORITY {
            j.prio_ready = true;
        }
    }

    fn flush_update(&self, id: u64) {
        if self.st.borrow().current.contains(&id) {
            return;
        }
        let Some(upd) = self.st.borrow_mut().pending_update.remove(&id) else { return };
        if upd.is_empty() {
            return;
        }
        self.post_jobspec_update(id, upd);
    }

    fn post_jobspec_update(&self, id: u64, upd: Map<String, Value>) {
        let state = {
            let mut st = self.st.borrow_mut();
            let Some(j) = st.jobs.get_mut(&id) else { return };
            for (k, v) in &upd {
                set_dotted(&mut j.jobspec, k, v.clone());
            }
            j.events.push(("jobspec-update".into(), Value::Object(upd.clone())));
            j.state
        };
        self.call("job.update", Some(id), json!({ "updates": upd }), json!({}), true);
        if state == SCHED {
            self.enter(id, PRIORITY);
        }
    }

    fn enter(&self, id: u64, state: u32) {
        let prev = {
            let mut st = self.st.borrow_mut();
            st.clock += 1.0;
            let clock = st.clock;
            let Some(j) = st.jobs.get_mut(&id) else { return };
            let prev = j.state;
            j.state = state;
            if state == PRIORITY {
                j.prio_ready = false;
            }
            j.events.push((format!("state:{}", state_name(state)), json!({"timestamp": clock})));
            prev
        };
        let topic = format!("job.state.{}", state_name(state));
        let entry = json!({"timestamp": 0.0, "name": state_name(state)});
        self.call(&topic, Some(id), json!({"entry": entry, "prev_state": prev}), json!({}), true);
        if state == DEPEND {
            if let Some(j) = self.st.borrow_mut().jobs.get_mut(&id) {
                j.depend_done = true;
            }
        }
        if state == INACTIVE {
            self.call("job.inactive-add", Some(id), json!({}), json!({}), false);
            self.call("job.destroy", Some(id), json!({}), json!({}), false);
        }
        self.settle(id);
    }

    /// Processes whatever transitions the job is due (unless it is in a
    /// callback right now, in which case the caller settles it later).
    fn settle(&self, id: u64) {
        loop {
            let next = {
                let st = self.st.borrow();
                if st.current.contains(&id) {
                    return;
                }
                let Some(j) = st.jobs.get(&id) else { return };
                if j.fatal.is_some() && matches!(j.state, DEPEND | PRIORITY | SCHED | RUN) {
                    Some(CLEANUP)
                } else if j.fatal.is_some() && j.state == CLEANUP {
                    Some(INACTIVE)
                } else if j.state == DEPEND && j.depend_done && j.deps.is_empty() {
                    Some(PRIORITY)
                } else if j.state == PRIORITY && j.prio_ready {
                    Some(SCHED)
                } else {
                    None
                }
            };
            match next {
                Some(s) => {
                    if s == SCHED {
                        if let Some(j) = self.st.borrow_mut().jobs.get_mut(&id) {
                            j.prio_ready = false;
                        }
                    }
                    self.enter(id, s)
                }
                None => return,
            }
        }
    }

    fn reprioritize_all(&self) {
        let ids: Vec<u64> =
            self.st.borrow().jobs.values().filter(|j| j.state == PRIORITY || j.state == SCHED).map(|j| j.id).collect();
        for id in ids {
            self.call("job.priority.get", Some(id), json!({}), json!({}), true);
            self.settle(id);
        }
    }

    fn destroy_plugin(&self) {
        let aux = {
            let mut st = self.st.borrow_mut();
            st.handlers.clear();
            st.services.clear();
            std::mem::take(&mut st.aux)
        };
        // Keyed items newest first, then key-less items in insertion order.
        let (keyed, keyless): (Vec<_>, Vec<_>) = aux.into_iter().partition(|(k, _, _)| k.is_some());
        for (_, v, f) in keyed.into_iter().rev().chain(keyless) {
            if let Some(f) = f {
                unsafe { f(v) };
            }
        }
    }
}

impl Host {
    /// Loads the plugin with the given conf (as `flux jobtap load
    /// mf_priority.so key=val…` would pass it).
    pub fn load(conf: Option<Value>) -> Result<Host, String> {
        let libs = libs();
        let path = plugin_path().display().to_string();
        let ctx = Box::new(Ctx {
            st: RefCell::new(St {
                name: path.clone(),
                path,
                sort_order: "none".into(),
                next_id: 1000,
                ..St::default()
            }),
        });
        let host = Host { ctx };
        host.init(conf, libs.init)?;
        Ok(host)
    }

    fn init(&self, conf: Option<Value>, init: InitFn) -> Result<(), String> {
        self.ctx.st.borrow_mut().conf = conf.map(|c| CString::new(c.to_string()).expect("conf has no NUL"));
        let rc = unsafe { init(self.ctx.p()) };
        if rc < 0 {
            self.ctx.destroy_plugin();
            return Err(format!("flux_plugin_init failed: {:?}", self.log()));
        }
        Ok(())
    }

    /// Unloads and loads the plugin again with `conf`, replaying active
    /// jobs (job.create, job.new, and job.state.depend for DEPEND jobs) in
    /// the plugin's sort order, then reprioritizing all.
    pub fn reload(&self, conf: Option<Value>) -> Result<(), String> {
        self.ctx.destroy_plugin();
        {
            let mut st = self.ctx.st.borrow_mut();
            st.name = st.path.clone();
            st.sort_order = "none".into();
        }
        self.init(conf, libs().init)?;
        let order = self.ctx.st.borrow().sort_order.clone();
        let mut jobs: Vec<(u32, u64)> =
            self.ctx.st.borrow().jobs.values().filter(|j| j.state != INACTIVE).map(|j| (j.state, j.id)).collect();
        match order.as_str() {
            "-state" => jobs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1))),
            "state" => jobs.sort(),
            _ => {}
        }
        for (state, id) in jobs {
            self.ctx.st.borrow_mut().current.push(id);
            self.ctx.call("job.create", Some(id), json!({}), json!({}), false);
            self.ctx.call("job.new", Some(id), json!({}), json!({}), false);
            if state == DEPEND {
                self.ctx.call("job.state.depend", Some(id), json!({}), json!({}), false);
            }
            self.ctx.st.borrow_mut().current.pop();
            self.ctx.flush_update(id);
        }
        self.ctx.reprioritize_all();
        let ids: Vec<u64> = self.ctx.st.borrow().jobs.keys().copied().collect();
        for id in ids {
            self.ctx.settle(id);
        }
        Ok(())
    }

    /// Submits a job; `Err(errmsg)` if it was rejected.
    pub fn submit(&self, userid: u32, jobspec: Value, urgency: i64) -> Result<u64, String> {
        let id = {
            let mut st = self.ctx.st.borrow_mut();
            st.next_id += 1;
            let id = st.next_id;
            st.jobs.insert(
                id,
                Job {
                    id,
                    userid,
                    urgency,
                    state: NEW,
                    priority: -1,
                    jobspec,
                    deps: BTreeSet::new(),
                    grudge: BTreeSet::new(),
                    events: vec![("submit".into(), json!({"userid": userid, "urgency": urgency}))],
                    fatal: None,
                    depend_done: false,
                    prio_ready: false,
                    alloc: false,
                },
            );
            id
        };
        let reject = |out: &Value, default: &str| -> String {
            out.get("errmsg").and_then(Value::as_str).unwrap_or(default).to_string()
        };
        for topic in ["job.create", "job.validate"] {
            if let Some((rc, out)) = self.ctx.call(topic, Some(id), json!({}), json!({}), false) {
                if rc < 0 {
                    self.ctx.call("job.destroy", Some(id), json!({}), json!({}), false);
                    self.ctx.st.borrow_mut().jobs.remove(&id);
                    return Err(reject(&out, "rejected by job-manager plugin"));
                }
            }
        }
        self.ctx.call("job.new", Some(id), json!({}), json!({}), true);
        if let Some(j) = self.ctx.st.borrow_mut().jobs.get_mut(&id) {
            j.events.push(("validate".into(), Value::Null));
        }
        self.ctx.enter(id, DEPEND);
        Ok(id)
    }

    /// SCHED → RUN (the scheduler allocated the job).
    pub fn run(&self, id: u64) {
        {
            let mut st = self.ctx.st.borrow_mut();
            let j = st.jobs.get_mut(&id).expect("job");
            assert_eq!(j.state, SCHED, "job {id} not in SCHED");
            j.alloc = true;
            j.events.push(("alloc".into(), Value::Null));
        }
        self.ctx.enter(id, RUN);
    }

    /// RUN → CLEANUP → INACTIVE.
    pub fn finish(&self, id: u64) {
        assert_eq!(self.job(id).state, RUN, "job {id} not running");
        self.ctx.enter(id, CLEANUP);
        self.ctx.enter(id, INACTIVE);
    }

    /// Cancels a job (fatal exception).
    pub fn cancel(&self, id: u64) {
        if let Some(j) = self.ctx.st.borrow_mut().jobs.get_mut(&id) {
            j.fatal = Some("canceled".into());
            j.events.push(("exception".into(), json!({"type": "cancel", "severity": 0})));
        }
        self.ctx.settle(id);
    }

    /// Changes a job's urgency (SCHED jobs go back to PRIORITY).
    pub fn set_urgency(&self, id: u64, urgency: i64) {
        let state = {
            let mut st = self.ctx.st.borrow_mut();
            let j = st.jobs.get_mut(&id).expect("job");
            j.urgency = urgency;
            j.events.push(("urgency".into(), json!({ "urgency": urgency })));
            j.state
        };
        if state == SCHED {
            self.ctx.enter(id, PRIORITY);
        } else if state == PRIORITY {
            self.ctx.call("job.priority.get", Some(id), json!({}), json!({}), true);
            self.ctx.settle(id);
        }
    }

    /// `flux update ID key=value`: the job.update.KEY handler, then
    /// job.validate on the updated jobspec, then the jobspec-update event.
    pub fn update(&self, id: u64, key: &str, value: Value) -> Result<(), String> {
        let topic = format!("job.update.{key}");
        let extra = json!({"cred": {"userid": 0, "rolemask": 1}, "key": key, "value": value});
        match self.ctx.call(&topic, Some(id), extra, json!({}), false) {
            None => return Err(format!("update of {key} not supported")),
            Some((rc, out)) if rc < 0 => {
                return Err(out
                    .get("errmsg")
                    .and_then(Value::as_str)
                    .unwrap_or("update rejected by job-manager plugin")
                    .to_string())
            }
            Some(_) => {}
        }
        let saved = self.job(id).jobspec;
        if let Some(j) = self.ctx.st.borrow_mut().jobs.get_mut(&id) {
            set_dotted(&mut j.jobspec, key, value.clone());
        }
        if let Some((rc, out)) = self.ctx.call("job.validate", Some(id), json!({}), json!({}), false) {
            if rc < 0 {
                if let Some(j) = self.ctx.st.borrow_mut().jobs.get_mut(&id) {
                    j.jobspec = saved;
                }
                return Err(out.get("errmsg").and_then(Value::as_str).unwrap_or("rejected").to_string());
            }
        }
        if let Some(j) = self.ctx.st.borrow_mut().jobs.get_mut(&id) {
            j.jobspec = saved;
        }
        let mut upd = Map::new();
        upd.insert(key.to_string(), value);
        self.ctx.post_jobspec_update(id, upd);
        self.ctx.settle(id);
        Ok(())
    }

    /// Sends a request to a registered service method; `Ok(payload)` (JSON
    /// null for an empty response) or `Err((errnum, text))`.
    pub fn service(&self, method: &str, payload: Option<Value>) -> Result<Value, (i32, String)> {
        let svc = {
            let st = self.ctx.st.borrow();
            st.services.iter().find(|(m, _, _)| m == method).map(|(_, cb, arg)| (*cb, *arg))
        };
        let Some((cb, arg)) = svc else {
            return Err((38, format!("Unknown service method 'job-manager.mf_priority.{method}'")));
        };
        let msg = Msg {
            topic: CString::new(format!("job-manager.mf_priority.{method}")).expect("topic"),
            payload: payload.map(|p| CString::new(p.to_string()).expect("payload")),
            response: RefCell::new(None),
            responded_twice: Cell::new(false),
        };
        self.service_raw(cb, arg, &msg)
    }

    /// Like [`Host::service`] with a raw payload string.
    pub fn service_text(&self, method: &str, payload: Option<&str>) -> Result<Value, (i32, String)> {
        let svc = {
            let st = self.ctx.st.borrow();
            st.services.iter().find(|(m, _, _)| m == method).map(|(_, cb, arg)| (*cb, *arg))
        };
        let (cb, arg) = svc.ok_or((38, "no such method".to_string()))?;
        let msg = Msg {
            topic: CString::new(method).expect("topic"),
            payload: payload.map(|p| CString::new(p.replace('\0', "")).expect("payload")),
            response: RefCell::new(None),
            responded_twice: Cell::new(false),
        };
        self.service_raw(cb, arg, &msg)
    }

    fn service_raw(&self, cb: MsgCb, arg: *mut c_void, msg: &Msg) -> Result<Value, (i32, String)> {
        unsafe { cb(self.ctx.p(), std::ptr::null_mut(), (msg as *const Msg).cast(), arg) };
        assert!(!msg.responded_twice.get(), "responded twice");
        let ids: Vec<u64> = self.ctx.st.borrow().jobs.keys().copied().collect();
        for id in ids {
            self.ctx.settle(id);
        }
        match msg.response.borrow_mut().take() {
            None => Err((-1, "no response".into())),
            Some(Ok(None)) => Ok(Value::Null),
            Some(Ok(Some(s))) => serde_json::from_str(&s).map_err(|e| (-1, format!("bad response JSON: {e}"))),
            Some(Err(e)) => Err(e),
        }
    }

    /// `flux jobtap query mf_priority.so`.
    pub fn query(&self) -> Value {
        let path = self.ctx.st.borrow().path.clone();
        let out = json!({"name": "mf_priority.so", "path": path});
        match self.ctx.call("plugin.query", None, json!({}), out, false) {
            Some((rc, out)) if rc >= 0 => out,
            other => panic!("plugin.query failed: {other:?}"),
        }
    }

    /// Calls the handler for `topic` with arbitrary IN args (fuzzing).
    /// Returns `None` if the plugin has no handler for it.
    pub fn raw_call(&self, topic: &str, input: Value) -> Option<(i32, Value)> {
        let (cb, data) = {
            let st = self.ctx.st.borrow();
            let h = st.handlers.iter().find(|(t, _, _)| glob_match(t, topic))?;
            (h.1, h.2)
        };
        Some(self.ctx.invoke(cb, data, topic, None, input, json!({})))
    }

    /// A copy of a job.
    pub fn job(&self, id: u64) -> Job {
        self.ctx.st.borrow().jobs.get(&id).cloned().expect("job exists")
    }

    /// Registered handler topics.
    pub fn topics(&self) -> Vec<String> {
        self.ctx.st.borrow().handlers.iter().map(|h| h.0.clone()).collect()
    }

    /// Registered service methods.
    pub fn methods(&self) -> Vec<String> {
        self.ctx.st.borrow().services.iter().map(|h| h.0.clone()).collect()
    }

    /// The plugin's name and the load sort order it asked for.
    pub fn name_and_sort_order(&self) -> (String, String) {
        let st = self.ctx.st.borrow();
        (st.name.clone(), st.sort_order.clone())
    }

    /// Log lines (level, text).
    pub fn log(&self) -> Vec<(i32, String)> {
        self.ctx.st.borrow().log.clone()
    }

    /// Protocol anomalies seen so far (should stay empty).
    pub fn anomalies(&self) -> Vec<String> {
        self.ctx.st.borrow().anomalies.clone()
    }

    /// Asserts no anomaly and no caught panic.
    pub fn assert_clean(&self) {
        assert!(self.anomalies().is_empty(), "anomalies: {:?}", self.anomalies());
        let panics: Vec<_> = self.log().into_iter().filter(|(_, m)| m.contains("panic")).collect();
        assert!(panics.is_empty(), "plugin panicked: {panics:?}");
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.ctx.destroy_plugin();
    }
}

// ---- the Rust side of the host symbols ----------------------------------

unsafe extern "C" fn h_set_name(p: *mut c_void, name: *const c_char) -> c_int {
    ctx(p).st.borrow_mut().name = cstr(name);
    0
}

unsafe extern "C" fn h_add_handler(
    p: *mut c_void,
    topic: *const c_char,
    cb: Option<PluginCb>,
    arg: *mut c_void,
) -> c_int {
    let topic = cstr(topic);
    let mut st = ctx(p).st.borrow_mut();
    match cb {
        Some(cb) => st.handlers.push((topic, cb, arg)),
        None => st.handlers.retain(|h| h.0 != topic),
    }
    0
}

unsafe extern "C" fn h_aux_set(p: *mut c_void, key: *const c_char, val: *mut c_void, free_fn: Option<FreeFn>) -> c_int {
    let key = (!key.is_null()).then(|| cstr(key));
    if (key.is_none() && val.is_null()) || (val.is_null() && free_fn.is_some()) || (key.is_none() && free_fn.is_none())
    {
        return -1;
    }
    let c = ctx(p);
    let old = {
        let mut st = c.st.borrow_mut();
        let old = key.as_ref().and_then(|k| {
            let i = st.aux.iter().position(|(kk, _, _)| kk.as_deref() == Some(k.as_str()))?;
            Some(st.aux.remove(i))
        });
        if !val.is_null() {
            st.aux.push((key, val, free_fn));
        }
        old
    };
    if let Some((_, v, Some(f))) = old {
        f(v);
    }
    0
}

unsafe extern "C" fn h_aux_get(p: *mut c_void, key: *const c_char) -> *mut c_void {
    let key = cstr(key);
    let st = ctx(p).st.borrow();
    st.aux.iter().find(|(k, _, _)| k.as_deref() == Some(key.as_str())).map_or(std::ptr::null_mut(), |a| a.1)
}

unsafe extern "C" fn h_get_conf(p: *mut c_void) -> *const c_char {
    ctx(p).st.borrow().conf.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

unsafe extern "C" fn h_arg_get(args: *mut c_void, flags: c_int) -> *const c_char {
    if args.is_null() {
        return std::ptr::null();
    }
    let a = &mut *(args as *mut Args);
    let v = if flags & 1 != 0 { &a.out } else { &a.input };
    a.last = CString::new(v.to_string()).unwrap_or_default();
    a.last.as_ptr()
}

unsafe extern "C" fn h_arg_set(args: *mut c_void, flags: c_int, json: *const c_char) -> c_int {
    if args.is_null() {
        return -1;
    }
    let a = &mut *(args as *mut Args);
    let Ok(v) = serde_json::from_str::<Value>(&cstr(json)) else { return -1 };
    let Some(obj) = v.as_object() else { return -1 };
    let target = if flags & 1 != 0 { &mut a.out } else { &mut a.input };
    if flags & 2 != 0 || !target.is_object() {
        *target = json!({});
    }
    if let Some(t) = target.as_object_mut() {
        for (k, v) in obj {
            t.insert(k.clone(), v.clone());
        }
    }
    0
}

unsafe extern "C" fn h_get_flux(p: *mut c_void) -> *mut c_void {
    p
}

unsafe extern "C" fn h_service_register(
    p: *mut c_void,
    method: *const c_char,
    cb: Option<MsgCb>,
    arg: *mut c_void,
) -> c_int {
    let c = ctx(p);
    let name = c.st.borrow().name.clone();
    if name.contains('/') {
        c.anomaly(format!("service {} registered before the plugin name was set", cstr(method)));
        return -1;
    }
    let Some(cb) = cb else { return -1 };
    c.st.borrow_mut().services.push((cstr(method), cb, arg));
    0
}

unsafe extern "C" fn h_set_load_sort_order(p: *mut c_void, mode: *const c_char) -> c_int {
    let mode = cstr(mode);
    if !["none", "state", "-state"].contains(&mode.as_str()) {
        return -1;
    }
    ctx(p).st.borrow_mut().sort_order = mode;
    0
}

unsafe extern "C" fn h_reprioritize_all(p: *mut c_void) -> c_int {
    ctx(p).reprioritize_all();
    0
}

unsafe extern "C" fn h_priority_unavail(_p: *mut c_void, args: *mut c_void) -> c_int {
    h_arg_set(args, 1, c"{\"priority\":-2}".as_ptr())
}

unsafe extern "C" fn h_dependency_add(p: *mut c_void, id: u64, desc: *const c_char) -> c_int {
    let c = ctx(p);
    let desc = cstr(desc);
    let mut st = c.st.borrow_mut();
    let Some(j) = st.jobs.get_mut(&id).filter(|j| j.state != INACTIVE) else { return -1 };
    if j.state != NEW && j.state != DEPEND {
        return -1;
    }
    if j.deps.contains(&desc) {
        return 0;
    }
    j.events.push(("dependency-add".into(), json!({ "description": desc })));
    if !j.grudge.contains(&desc) {
        j.deps.insert(desc);
    }
    0
}

unsafe extern "C" fn h_dependency_remove(p: *mut c_void, id: u64, desc: *const c_char) -> c_int {
    let c = ctx(p);
    let desc = cstr(desc);
    {
        let mut st = c.st.borrow_mut();
        let Some(j) = st.jobs.get_mut(&id) else { return -1 };
        if (j.state != NEW && j.state != DEPEND) || !j.deps.remove(&desc) {
            return -1;
        }
        j.grudge.insert(desc.clone());
        j.events.push(("dependency-remove".into(), json!({ "description": desc })));
    }
    // Synchronous unless the job is in a callback right now.
    c.settle(id);
    0
}

unsafe extern "C" fn h_jobspec_update(p: *mut c_void, json: *const c_char) -> c_int {
    let c = ctx(p);
    let Ok(Value::Object(upd)) = serde_json::from_str::<Value>(&cstr(json)) else { return -1 };
    let mut st = c.st.borrow_mut();
    let Some(&id) = st.current.last() else { return -1 };
    let state = st.jobs.get(&id).map_or(0, |j| j.state);
    if state == RUN || state == CLEANUP || state == INACTIVE || state == 0 {
        return -1;
    }
    if !upd
        .keys()
        .all(|k| ["attributes", "resources", "tasks"].iter().any(|p| k == p || k.starts_with(&format!("{p}."))))
    {
        return -1;
    }
    st.pending_update.entry(id).or_default().extend(upd);
    0
}

unsafe extern "C" fn h_event_post(p: *mut c_void, id: u64, name: *const c_char, json: *const c_char) -> c_int {
    let c = ctx(p);
    let ctxv = if json.is_null() {
        Value::Null
    } else {
        match serde_json::from_str::<Value>(&cstr(json)) {
            Ok(v) => v,
            Err(e) => {
                c.anomaly(format!("event context is not JSON: {e}"));
                return -1;
            }
        }
    };
    let mut st = c.st.borrow_mut();
    let Some(j) = st.jobs.get_mut(&id).filter(|j| j.state != INACTIVE) else { return -1 };
    j.events.push((cstr(name), ctxv));
    0
}

unsafe extern "C" fn h_raise_exception(
    p: *mut c_void,
    id: u64,
    ty: *const c_char,
    sev: c_int,
    note: *const c_char,
) -> c_int {
    let c = ctx(p);
    {
        let mut st = c.st.borrow_mut();
        let Some(j) = st.jobs.get_mut(&id).filter(|j| j.state != INACTIVE) else { return -1 };
        let note = cstr(note);
        j.events.push(("exception".into(), json!({"type": cstr(ty), "severity": sev, "note": note})));
        if sev == 0 {
            j.fatal = Some(note);
        }
    }
    c.settle(id);
    0
}

unsafe extern "C" fn h_request_decode(msg: *const c_void, topic: *mut *const c_char, s: *mut *const c_char) -> c_int {
    if msg.is_null() {
        return -1;
    }
    let m = &*(msg as *const Msg);
    if !topic.is_null() {
        *topic = m.topic.as_ptr();
    }
    if !s.is_null() {
        *s = m.payload.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
    }
    0
}

unsafe extern "C" fn h_respond(_h: *mut c_void, msg: *const c_void, s: *const c_char) -> c_int {
    let m = &*(msg as *const Msg);
    let mut r = m.response.borrow_mut();
    if r.is_some() {
        m.responded_twice.set(true);
        return 0;
    }
    *r = Some(Ok((!s.is_null()).then(|| cstr(s))));
    0
}

unsafe extern "C" fn h_respond_error(
    _h: *mut c_void,
    msg: *const c_void,
    errnum: c_int,
    errstr: *const c_char,
) -> c_int {
    let m = &*(msg as *const Msg);
    let mut r = m.response.borrow_mut();
    if r.is_some() {
        m.responded_twice.set(true);
        return 0;
    }
    *r = Some(Err((if errnum == 0 { 22 } else { errnum }, cstr(errstr))));
    0
}

unsafe extern "C" fn h_log(h: *mut c_void, level: c_int, msg: *const c_char) {
    let text = cstr(msg);
    if h.is_null() {
        eprintln!("flux_log({level}): {text}");
        return;
    }
    ctx(h).st.borrow_mut().log.push((level, text));
}
