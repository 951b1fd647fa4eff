//! job-list queries: `job-list.list` and `job-list.list-id`.

use crate::error::{Error, Result};
use crate::{Flux, ENOENT};

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
            serde_json::from_str(&reply).map_err(|e| Error::msg(format!("job-list.list: invalid response: {e}")))?;
        match v.get("jobs") {
            Some(serde_json::Value::Array(a)) => Ok(a.clone()),
            _ => Err(Error::msg("job-list.list: response has no jobs array")),
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
                    .map_err(|e| Error::msg(format!("job-list.list-id: invalid response: {e}")))?;
                Ok(v.get("job").cloned())
            }
        }
    }
}

#[cfg(test)]
mod job_list_tests {
    use super::*;
    use crate::{job_result, job_state};
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
