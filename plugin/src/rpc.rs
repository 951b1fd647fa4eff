//! flux-accounting's update RPCs (`job-manager.mf_priority.rec_update`,
//! `rec_q_update`, `rec_proj_update`, `rec_bank_update`, `rec_fac_update`,
//! `rec_config_update`): their payloads, parsed and validated into an
//! [`RpcUpdate`] that the decision core (`Policy::apply_rpc`) applies.
//!
//! Every payload is `{"data": …}`: an array of objects (an object for
//! `rec_config_update`). Keys and types are flux-accounting 0.60's (its
//! jansson formats: `i`/`I` a JSON integer, `F` any JSON number, `s` a
//! string, `b` a boolean). A request is checked whole before anything
//! changes: one bad element refuses the request (EPROTO) and the plugin's
//! data stays as it was.

use fluxacct_core::limits::AssocLimits;
use fluxacct_core::queue::QueueLimits;
use fluxacct_core::snapshot::{AssociationRecord, QueueRecord};
use serde_json::{Map, Value};

use crate::EPROTO;

/// `max_sched_jobs` of a `rec_update` element that has none: the value
/// flux-accounting's plugin ends up with (`INT16_MAX`, its initial value),
/// since its own test payloads omit the key.
pub const DEFAULT_MAX_SCHED_JOBS: i64 = 32_767;

/// The update RPC methods, in registration order.
pub const METHODS: [&str; 6] =
    ["rec_update", "rec_q_update", "rec_proj_update", "rec_bank_update", "rec_fac_update", "rec_config_update"];

/// One validated update request.
#[derive(Debug, Clone, PartialEq)]
pub enum RpcUpdate {
    /// `rec_update`: associations to insert or overwrite (never removed).
    /// `username` is empty (the payload carries none).
    Associations(Vec<AssociationRecord>),
    /// `rec_q_update`: the queues, replacing all of them.
    Queues(Vec<QueueRecord>),
    /// `rec_proj_update`: the projects, replacing all of them.
    Projects(Vec<String>),
    /// `rec_bank_update`: (bank, priority), replacing all banks.
    Banks(Vec<(String, f64)>),
    /// `rec_fac_update`: (factor, weight), each set in turn.
    Factors(Vec<(String, i64)>),
    /// `rec_config_update`: `deny_unknown_queues` (false when absent).
    Config {
        /// Reject jobs naming a queue unknown to flux-accounting.
        deny_unknown_queues: bool,
    },
}

/// Why a request was refused: the errno of the error response and the text
/// logged and returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    /// Error number of the response.
    pub errnum: i32,
    /// Message (also logged at LOG_ERR).
    pub text: String,
}

fn refuse(text: impl Into<String>) -> RpcError {
    RpcError { errnum: EPROTO, text: text.into() }
}

/// Parses the payload of update method `method` (one of [`METHODS`]).
pub fn parse(method: &str, payload: Option<&str>) -> Result<RpcUpdate, RpcError> {
    // flux_request_unpack(msg, NULL, "{s:o}", "data", &data) failing.
    let unpack = || refuse("failed to unpack custom_priority.trigger msg: Protocol error");
    let v: Value = serde_json::from_str(payload.ok_or_else(unpack)?).map_err(|_| unpack())?;
    let data = v.as_object().and_then(|o| o.get("data")).ok_or_else(unpack)?;
    if method == "rec_config_update" {
        let obj = data.as_object().ok_or_else(|| refuse("mf_priority: invalid config payload"))?;
        let deny = match obj.get("deny_unknown_queues") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(refuse("mf_priority config unpack: deny_unknown_queues: expected true or false")),
        };
        return Ok(RpcUpdate::Config { deny_unknown_queues: deny });
    }
    let what = match method {
        "rec_update" => "bulk_update",
        "rec_q_update" => "queue info",
        "rec_proj_update" => "project info",
        "rec_bank_update" | "rec_fac_update" => "bank info",
        _ => return Err(RpcError { errnum: crate::EINVAL, text: format!("mf_priority: unknown method {method}") }),
    };
    let items = data.as_array().ok_or_else(|| refuse(format!("mf_priority: invalid {what} payload")))?;
    let mut elems = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let o = item.as_object().ok_or_else(|| refuse(format!("mf_priority unpack: data[{i}]: expected an object")))?;
        elems.push(Elem { o, i });
    }
    match method {
        "rec_update" => elems.iter().map(Elem::association).collect::<Result<_, _>>().map(RpcUpdate::Associations),
        "rec_q_update" => elems.iter().map(Elem::queue).collect::<Result<_, _>>().map(RpcUpdate::Queues),
        "rec_proj_update" => {
            elems.iter().map(|e| e.string("project")).collect::<Result<_, _>>().map(RpcUpdate::Projects)
        }
        "rec_bank_update" => elems
            .iter()
            .map(|e| Ok((e.string("bank")?, e.number("priority")?)))
            .collect::<Result<_, _>>()
            .map(RpcUpdate::Banks),
        _ => elems
            .iter()
            .map(|e| Ok((e.string("factor")?, e.integer("weight")?)))
            .collect::<Result<_, _>>()
            .map(RpcUpdate::Factors),
    }
}

/// One element of `data`, with its index for messages.
struct Elem<'a> {
    o: &'a Map<String, Value>,
    i: usize,
}

impl Elem<'_> {
    fn get(&self, key: &str) -> Result<&Value, RpcError> {
        self.o
            .get(key)
            .ok_or_else(|| refuse(format!("mf_priority unpack: data[{}]: object item not found: {key}", self.i)))
    }

    fn wrong(&self, key: &str, want: &str) -> RpcError {
        refuse(format!("mf_priority unpack: data[{}]: {key}: expected {want}", self.i))
    }

    fn string(&self, key: &str) -> Result<String, RpcError> {
        self.get(key)?.as_str().map(str::to_string).ok_or_else(|| self.wrong(key, "a string"))
    }

    fn integer(&self, key: &str) -> Result<i64, RpcError> {
        self.get(key)?.as_i64().ok_or_else(|| self.wrong(key, "an integer"))
    }

    fn number(&self, key: &str) -> Result<f64, RpcError> {
        self.get(key)?.as_f64().ok_or_else(|| self.wrong(key, "a number"))
    }

    fn association(&self) -> Result<AssociationRecord, RpcError> {
        let userid = u32::try_from(self.integer("userid")?).map_err(|_| self.wrong("userid", "a uid"))?;
        let list = |key: &str| -> Result<Vec<String>, RpcError> {
            Ok(fluxacct_core::split_list(&self.string(key)?).into_iter().map(str::to_string).collect())
        };
        let max_sched_jobs = match self.o.get("max_sched_jobs") {
            None => DEFAULT_MAX_SCHED_JOBS,
            Some(_) => self.integer("max_sched_jobs")?,
        };
        Ok(AssociationRecord {
            userid,
            username: String::new(),
            bank: self.string("bank")?,
            default_bank: self.string("def_bank")?,
            active: self.integer("active")? != 0,
            fairshare: self.number("fairshare")?,
            limits: AssocLimits {
                max_running_jobs: self.integer("max_running_jobs")?,
                max_active_jobs: self.integer("max_active_jobs")?,
                max_nodes: self.integer("max_nodes")?,
                max_cores: self.integer("max_cores")?,
                max_sched_jobs,
            },
            queues: list("queues")?,
            projects: list("projects")?,
            default_project: self.string("def_project")?,
        })
    }

    fn queue(&self) -> Result<QueueRecord, RpcError> {
        let limits = QueueLimits {
            min_nodes_per_job: self.integer("min_nodes_per_job")?,
            max_nodes_per_job: self.integer("max_nodes_per_job")?,
            max_time_per_job: self.integer("max_time_per_job")?,
            priority: self.integer("priority")?,
            max_running_jobs: self.integer("max_running_jobs")?,
            max_nodes_per_assoc: self.integer("max_nodes_per_assoc")?,
            max_sched_jobs: self.integer("max_sched_jobs")?,
            max_sched_nodes_per_assoc: self.integer("max_sched_nodes_per_assoc")?,
            max_sched_cores_per_assoc: self.integer("max_sched_cores_per_assoc")?,
        };
        Ok(QueueRecord::new(self.string("queue")?, limits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assoc() -> Value {
        json!({"userid": 5011, "bank": "account3", "def_bank": "account3", "fairshare": 0.45321,
               "max_running_jobs": 10, "max_active_jobs": 12, "max_nodes": 2147483647,
               "max_cores": 2147483647, "max_sched_jobs": 5, "queues": "standby,special",
               "active": 1, "projects": "*", "def_project": "*"})
    }

    fn parse_v(method: &str, v: Value) -> Result<RpcUpdate, RpcError> {
        parse(method, Some(&v.to_string()))
    }

    #[test]
    fn rec_update_reads_the_thirteen_keys_and_defaults_only_max_sched_jobs() {
        let Ok(RpcUpdate::Associations(a)) = parse_v("rec_update", json!({"data": [assoc()]})) else {
            panic!("not parsed")
        };
        assert_eq!(a[0].queues, vec!["standby", "special"]);
        assert_eq!(a[0].limits.max_sched_jobs, 5);
        assert!(a[0].active);
        let mut twelve = assoc();
        twelve.as_object_mut().map(|o| o.remove("max_sched_jobs"));
        let Ok(RpcUpdate::Associations(a)) = parse_v("rec_update", json!({"data": [twelve]})) else {
            panic!("not parsed")
        };
        assert_eq!(a[0].limits.max_sched_jobs, DEFAULT_MAX_SCHED_JOBS);
        for key in ["userid", "bank", "def_bank", "fairshare", "max_running_jobs", "queues", "def_project"] {
            let mut v = assoc();
            v.as_object_mut().map(|o| o.remove(key));
            let e = parse_v("rec_update", json!({"data": [assoc(), v]})).expect_err(key);
            assert_eq!(e.errnum, EPROTO);
            assert!(e.text.contains(key), "{}", e.text);
        }
        let mut v = assoc();
        v["userid"] = json!("5011");
        assert!(parse_v("rec_update", json!({"data": [v]})).is_err());
        let mut v = assoc();
        v["fairshare"] = json!(1);
        assert!(parse_v("rec_update", json!({"data": [v]})).is_ok(), "F takes an integer");
        let mut v = assoc();
        v["max_nodes"] = json!(1.5);
        assert!(parse_v("rec_update", json!({"data": [v]})).is_err(), "i takes no real");
    }

    #[test]
    fn payload_without_data_is_an_unpack_error() {
        for p in [None, Some("{}"), Some("[]"), Some("nope"), Some("{\"dat\": []}")] {
            let e = parse("rec_update", p).expect_err("refused");
            assert_eq!(e, refuse("failed to unpack custom_priority.trigger msg: Protocol error"));
        }
        assert!(parse_v("rec_q_update", json!({"data": {}})).is_err());
        assert!(parse_v("rec_proj_update", json!({"data": [1]})).is_err());
        assert!(parse_v("rec_config_update", json!({"data": []})).is_err());
    }

    #[test]
    fn other_methods_parse_their_shapes() {
        let q = json!({"queue": "bronze", "min_nodes_per_job": 0, "max_nodes_per_job": 5, "max_time_per_job": 64000,
                       "priority": 200, "max_running_jobs": 3, "max_nodes_per_assoc": 4, "max_sched_jobs": 5,
                       "max_sched_nodes_per_assoc": 6, "max_sched_cores_per_assoc": 7});
        let Ok(RpcUpdate::Queues(qs)) = parse_v("rec_q_update", json!({"data": [q]})) else { panic!("queues") };
        assert_eq!(
            (qs[0].name.as_str(), qs[0].limits.priority, qs[0].limits.max_sched_cores_per_assoc),
            ("bronze", 200, 7)
        );
        assert_eq!(
            parse_v("rec_proj_update", json!({"data": [{"project": "*"}, {"project": "p"}]})),
            Ok(RpcUpdate::Projects(vec!["*".into(), "p".into()]))
        );
        assert_eq!(
            parse_v("rec_bank_update", json!({"data": [{"bank": "b", "priority": 2}]})),
            Ok(RpcUpdate::Banks(vec![("b".into(), 2.0)]))
        );
        assert!(parse_v("rec_bank_update", json!({"data": [{"bank": "b"}]})).is_err());
        assert_eq!(
            parse_v("rec_fac_update", json!({"data": [{"factor": "urgency", "weight": 1}]})),
            Ok(RpcUpdate::Factors(vec![("urgency".into(), 1)]))
        );
        assert!(parse_v("rec_fac_update", json!({"data": [{"factor": "urgency", "weight": 0.5}]})).is_err());
        assert_eq!(
            parse_v("rec_config_update", json!({"data": {"deny_unknown_queues": true}})),
            Ok(RpcUpdate::Config { deny_unknown_queues: true })
        );
        assert_eq!(
            parse_v("rec_config_update", json!({"data": {}})),
            Ok(RpcUpdate::Config { deny_unknown_queues: false })
        );
        assert!(parse_v("rec_config_update", json!({"data": {"deny_unknown_queues": 1}})).is_err());
        assert_eq!(parse_v("rec_nope", json!({"data": []})).map_err(|e| e.errnum), Err(crate::EINVAL));
    }
}
