//! Rendering a [`Scrape`] as OpenMetrics text with `prometheus-client`.
//!
//! The client writes label values as given; [`Esc`] escapes them per the
//! OpenMetrics text format (a backslash, a double quote and a line feed
//! become `\\`, `\"` and `\n`; everything else, non-ASCII included, stays
//! as UTF-8).

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::gather::Scrape;

/// `s` escaped as an OpenMetrics label value (without the quotes).
pub fn escape_label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A label value, escaped when encoded.
#[derive(Debug, Clone, Copy)]
struct Esc<'a>(&'a str);

impl EncodeLabelValue for Esc<'_> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        let s = self.0;
        if !s.contains(['\\', '"', '\n']) {
            return encoder.write_str(s);
        }
        encoder.write_str(&escape_label_value(s))
    }
}

/// Renders `scrape` as one OpenMetrics text exposition (ending in `# EOF`).
pub fn encode(scrape: &Scrape) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Collector(scrape.clone())));
    let mut out = String::with_capacity(256 * (scrape.associations.len() + 64));
    // Writing to a String does not fail, and every value here encodes.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// The content type of the classic Prometheus text format (0.0.4).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The OpenMetrics text `openmetrics` (from [`encode`]) in the classic
/// Prometheus text format (0.0.4), for scrapers that do not ask for
/// OpenMetrics and for `promtool check metrics`, which lints that format:
/// a counter's `# HELP`/`# TYPE` name its `_total` sample, and the
/// OpenMetrics-only `# UNIT` and `# EOF` lines go. Samples and label
/// escaping are the same in both formats.
pub fn to_classic_text(openmetrics: &str) -> String {
    let counters: std::collections::BTreeSet<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{p}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[derive(Debug)]
struct Collector(Scrape);

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        write_all(&self.0, &mut enc)
    }
}

/// A metric's value.
#[derive(Debug, Clone, Copy)]
enum V {
    Int(i64),
    Float(f64),
}

impl From<i64> for V {
    fn from(v: i64) -> V {
        V::Int(v)
    }
}
impl From<u64> for V {
    fn from(v: u64) -> V {
        V::Int(v.min(i64::MAX as u64) as i64)
    }
}
impl From<f64> for V {
    fn from(v: f64) -> V {
        V::Float(v)
    }
}

fn put_gauge(m: &mut MetricEncoder<'_>, v: V) -> Result<(), std::fmt::Error> {
    match v {
        V::Int(i) => m.encode_gauge(&i),
        V::Float(f) => m.encode_gauge(&f),
    }
}

/// One gauge family with a sample per row (written only when there is a
/// row: an empty family says nothing).
fn gauges<'a, L: EncodeLabelSet + 'a>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: impl IntoIterator<Item = (L, V)>,
) -> Result<(), std::fmt::Error> {
    let mut rows = rows.into_iter().peekable();
    if rows.peek().is_none() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (labels, v) in rows {
        put_gauge(&mut m.encode_family(&labels)?, v)?;
    }
    Ok(())
}

/// One gauge without labels.
fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    v: V,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    put_gauge(&mut m, v)
}

/// One counter without labels (the sample is `NAME_total`).
fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Result<(), std::fmt::Error> {
    struct Const(u64);
    impl EncodeMetric for Const {
        fn encode(&self, mut m: MetricEncoder) -> Result<(), std::fmt::Error> {
            m.encode_counter::<prometheus_client::encoding::NoLabelSet, u64, f64>(&self.0, None)
        }
        fn metric_type(&self) -> MetricType {
            MetricType::Counter
        }
    }
    let c = Const(v);
    let m = enc.encode_descriptor(name, help, None, c.metric_type())?;
    c.encode(m)
}

fn write_all(s: &Scrape, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let secs = Some(&Unit::Seconds);
    let bytes = Some(&Unit::Bytes);

    // Associations.
    let assoc = |f: fn(&crate::gather::AssociationRow) -> V| {
        s.associations.iter().map(move |a| ([("bank", Esc(&a.bank)), ("user", Esc(&a.user))], f(a)))
    };
    gauges(
        enc,
        "fluxacct_association_usage",
        "Decayed job usage of the association as of the last update-usage.",
        None,
        assoc(|a| a.usage.into()),
    )?;
    gauges(
        enc,
        "fluxacct_association_fairshare",
        "Fair-share of the association (0 to 1) as of the last update-fshare.",
        None,
        assoc(|a| a.fairshare.into()),
    )?;
    gauges(enc, "fluxacct_association_shares", "Shares of the association.", None, assoc(|a| a.shares.into()))?;
    gauges(
        enc,
        "fluxacct_association_active",
        "1 when the association is active, 0 when disabled.",
        None,
        assoc(|a| a.active.into()),
    )?;
    gauges(
        enc,
        "fluxacct_association_max_running_jobs",
        "Running-jobs limit of the association.",
        None,
        assoc(|a| a.max_running_jobs.into()),
    )?;
    gauges(
        enc,
        "fluxacct_association_max_active_jobs",
        "Active-jobs limit of the association.",
        None,
        assoc(|a| a.max_active_jobs.into()),
    )?;

    // Banks.
    let bank = |f: fn(&crate::gather::BankRow) -> V| {
        s.banks.iter().map(move |b| ([("bank", Esc(&b.bank)), ("parent", Esc(&b.parent))], f(b)))
    };
    gauges(
        enc,
        "fluxacct_bank_usage",
        "Decayed job usage of the bank and its sub-banks as of the last update-usage.",
        None,
        bank(|b| b.usage.into()),
    )?;
    gauges(enc, "fluxacct_bank_shares", "Shares of the bank.", None, bank(|b| b.shares.into()))?;
    gauges(
        enc,
        "fluxacct_bank_active",
        "1 when the bank is active, 0 when disabled.",
        None,
        bank(|b| b.active.into()),
    )?;
    gauges(enc, "fluxacct_bank_priority", "Priority of the bank.", None, bank(|b| b.priority.into()))?;

    // Queues and priority factors.
    gauges(
        enc,
        "fluxacct_queue_priority",
        "Priority factor of the queue.",
        None,
        s.queues.iter().map(|q| ([("queue", Esc(&q.queue))], V::from(q.priority))),
    )?;
    gauges(
        enc,
        "fluxacct_queue_max_running_jobs",
        "Running-jobs limit per association in the queue.",
        None,
        s.queues.iter().map(|q| ([("queue", Esc(&q.queue))], V::from(q.max_running_jobs))),
    )?;
    gauges(
        enc,
        "fluxacct_priority_factor_weight",
        "Weight of a priority factor.",
        None,
        s.factors.iter().map(|(f, w)| ([("factor", Esc(f))], V::from(*w))),
    )?;

    // Allocations.
    if let Some(allocs) = &s.allocations {
        let alloc = |f: fn(&crate::gather::Allocation) -> V| {
            allocs.iter().map(move |a| {
                (
                    [
                        ("allocation", Esc(&a.name)),
                        ("bank", Esc(&a.bank)),
                        ("project", Esc(&a.project)),
                        ("unit", Esc(&a.unit)),
                    ],
                    f(a),
                )
            })
        };
        gauges(
            enc,
            "fluxacct_allocation_allocated",
            "Amount allocated, in the allocation's unit.",
            None,
            alloc(|a| a.allocated.into()),
        )?;
        gauges(
            enc,
            "fluxacct_allocation_charged",
            "Amount charged so far, in the allocation's unit.",
            None,
            alloc(|a| a.charged.into()),
        )?;
        gauges(
            enc,
            "fluxacct_allocation_reserved",
            "Amount reserved by running jobs, in the allocation's unit.",
            None,
            alloc(|a| a.reserved.into()),
        )?;
        gauges(
            enc,
            "fluxacct_allocation_remaining",
            "Amount remaining, in the allocation's unit.",
            None,
            alloc(|a| a.remaining.into()),
        )?;
        gauges(
            enc,
            "fluxacct_allocation_active",
            "1 while the allocation is active.",
            None,
            alloc(|a| a.active.into()),
        )?;
        gauges(
            enc,
            "fluxacct_allocation_end_timestamp",
            "End of the allocation's period.",
            secs,
            alloc(|a| a.end_s.into()),
        )?;
    }

    // The ledger's health.
    let h = &s.health;
    gauge(enc, "fluxacct_ledger_head_seq", "Seq of the newest event in the log.", None, h.head_seq.into())?;
    if let Some(t) = h.head_time_s {
        gauge(enc, "fluxacct_ledger_head_timestamp", "Time the newest event was recorded.", secs, t.into())?;
    }
    if let Some(v) = h.verified_seq {
        gauge(enc, "fluxacct_ledger_verified_seq", "Every event up to this seq was verified.", None, v.into())?;
    }
    gauge(
        enc,
        "fluxacct_ledger_chain_break",
        "1 while a break of the hash chain is recorded (writes are refused), else 0.",
        None,
        i64::from(h.broken_seq.is_some()).into(),
    )?;
    if let Some(b) = h.broken_seq {
        gauge(enc, "fluxacct_ledger_chain_break_seq", "First bad seq of the recorded break.", None, b.into())?;
    }
    gauge(
        enc,
        "fluxacct_ledger_accepted_breaks",
        "Breaks of the hash chain accepted by repair --accept-break.",
        None,
        h.accepted_breaks.into(),
    )?;
    counter(enc, "fluxacct_jobs_recorded", "Job records in the log (JobRecorded events).", h.jobs_recorded)?;
    counter(enc, "fluxacct_jobs_rejected", "Rejected job records in the log (JobRejected events).", h.jobs_rejected)?;
    if let Some(t) = h.usage_as_of_s {
        gauge(enc, "fluxacct_usage_as_of_timestamp", "Time the usage projection is as of.", secs, t.into())?;
    }
    let stage = |f: fn(&crate::gather::StageRun) -> Option<f64>| {
        h.stages.iter().filter_map(move |r| f(r).map(|t| ([("stage", Esc(r.stage))], V::from(t))))
    };
    gauges(
        enc,
        "fluxacct_pipeline_last_success_timestamp",
        "Time the pipeline stage last succeeded.",
        secs,
        stage(|r| r.last_ok_s),
    )?;
    gauges(
        enc,
        "fluxacct_pipeline_last_failure_timestamp",
        "Time the pipeline stage last failed.",
        secs,
        stage(|r| r.last_error_s),
    )?;
    gauges(
        enc,
        "fluxacct_pipeline_last_run_success",
        "1 when the stage's last run succeeded, 0 when it failed.",
        None,
        h.stages.iter().filter(|r| r.last_ok_s.is_some() || r.last_error_s.is_some()).map(|r| {
            let ok = r.last_ok_s.unwrap_or(f64::NEG_INFINITY) >= r.last_error_s.unwrap_or(f64::NEG_INFINITY);
            ([("stage", Esc(r.stage))], V::from(i64::from(ok)))
        }),
    )?;
    gauges(
        enc,
        "fluxacct_pipeline_last_error",
        "Always 1; the error label is the stage's last failure.",
        None,
        h.stages.iter().filter_map(|r| {
            r.last_error.as_deref().map(|e| ([("stage", Esc(r.stage)), ("error", Esc(e))], V::from(1i64)))
        }),
    )?;
    if let Some(snap) = &h.snapshot {
        gauge(enc, "fluxacct_snapshot_seq", "Ledger seq the plugin snapshot reflects.", None, snap.seq.into())?;
        gauge(enc, "fluxacct_snapshot_timestamp", "Time the plugin snapshot was written.", secs, snap.mtime_s.into())?;
        gauge(
            enc,
            "fluxacct_snapshot_age",
            "Age of the plugin snapshot at the scrape.",
            secs,
            (s.now_s - snap.mtime_s).max(0.0).into(),
        )?;
    }
    gauge(enc, "fluxacct_ledger_file_size", "Size of the ledger file.", bytes, h.file_size_bytes.into())?;
    gauge(enc, "fluxacct_ledger_wal_size", "Size of the ledger's write-ahead log.", bytes, h.wal_size_bytes.into())?;

    // The journal follower.
    if let Some(f) = &h.follower {
        let us = |t: i64| V::from(t as f64 / 1e6);
        if let Some(v) = f.last_job_id {
            gauge(enc, "fluxacct_follower_last_job_id", "Id of the last job the follower recorded.", None, v.into())?;
        }
        if let Some(v) = f.last_clean_us {
            gauge(
                enc,
                "fluxacct_follower_last_clean_timestamp",
                "Time the follower last caught up with the journal.",
                secs,
                us(v),
            )?;
        }
        if let Some(v) = f.heartbeat_us {
            gauge(enc, "fluxacct_follower_heartbeat_timestamp", "Time of the follower's last heartbeat.", secs, us(v))?;
        }
        if let Some(v) = f.lag_us {
            gauge(enc, "fluxacct_follower_lag", "How far the follower is behind the journal.", secs, us(v))?;
        }
        if let Some(v) = f.batches {
            counter(enc, "fluxacct_follower_batches", "Batches the follower wrote.", v.max(0) as u64)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gather::{AssociationRow, Health, StageRun};

    #[test]
    fn label_values_escape_backslash_quote_and_newline_only() {
        assert_eq!(escape_label_value("plain"), "plain");
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_label_value("Zürich\t東京"), "Zürich\t東京");
    }

    #[test]
    fn an_empty_ledger_gives_the_health_metrics_and_no_empty_families() {
        let text = encode(&Scrape::default());
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("fluxacct_ledger_head_seq 0\n"), "{text}");
        assert!(text.contains("fluxacct_jobs_recorded_total 0\n"), "{text}");
        assert!(!text.contains("fluxacct_association_"), "no rows, no family: {text}");
        assert!(!text.contains("fluxacct_pipeline_"), "no runs, no family: {text}");
        assert!(!text.contains("fluxacct_follower_"), "{text}");
    }

    #[test]
    fn a_stage_whose_failure_is_newer_than_its_success_reports_failure() {
        let scrape = Scrape {
            associations: vec![AssociationRow {
                user: "u\"1".into(),
                bank: "b\n".into(),
                usage: 1.5,
                fairshare: 0.25,
                shares: 2,
                active: 1,
                max_running_jobs: 5,
                max_active_jobs: 7,
            }],
            health: Health {
                stages: vec![
                    StageRun {
                        stage: "update-usage",
                        last_ok_s: Some(10.0),
                        last_error_s: Some(20.0),
                        last_error: Some("x".into()),
                    },
                    StageRun {
                        stage: "update-fshare",
                        last_ok_s: Some(30.0),
                        last_error_s: Some(20.0),
                        last_error: None,
                    },
                ],
                ..Health::default()
            },
            ..Scrape::default()
        };
        let text = encode(&scrape);
        assert!(text.contains("fluxacct_association_fairshare{bank=\"b\\n\",user=\"u\\\"1\"} 0.25\n"), "{text}");
        assert!(text.contains("fluxacct_pipeline_last_run_success{stage=\"update-usage\"} 0\n"), "{text}");
        assert!(text.contains("fluxacct_pipeline_last_run_success{stage=\"update-fshare\"} 1\n"), "{text}");
        assert!(text.contains("fluxacct_pipeline_last_error{stage=\"update-usage\",error=\"x\"} 1\n"), "{text}");
        assert!(text.contains("# UNIT fluxacct_pipeline_last_success_timestamp_seconds seconds\n"), "{text}");
    }

    #[test]
    fn the_classic_text_names_counters_by_their_total_sample_and_drops_unit_and_eof() {
        let om = "# HELP a_seconds Age.\n# TYPE a_seconds gauge\n# UNIT a_seconds seconds\na_seconds 1\n\
                  # HELP jobs Jobs.\n# TYPE jobs counter\njobs_total 5\n# EOF\n";
        assert_eq!(
            to_classic_text(om),
            "# HELP a_seconds Age.\n# TYPE a_seconds gauge\na_seconds 1\n\
             # HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total 5\n"
        );
    }
}
