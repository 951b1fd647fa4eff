//! Where libflux-core is loaded from (README, "The commands that talk to
//! Flux"): the override, the install the `flux` driver belongs to, the
//! `flux` on `PATH`, then the linker's default search.

use std::path::{Path, PathBuf};

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

/// Whether a process of effective uid `euid` may load the library at
/// `path` (a candidate the environment named): always, unless `euid` is 0;
/// as root only when the file (after symlinks) and every directory above
/// it are owned by root and writable by neither group nor others, as ssh
/// checks its files (a directory with the sticky bit, such as `/tmp`, may
/// be writable by others: nobody else can replace a root-owned entry in
/// it). `Err` names the file or directory at fault.
pub fn root_may_load(path: &Path, euid: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if euid != 0 {
        return Ok(());
    }
    // A file that does not exist (yet) is as safe as the nearest
    // directory above it that does: nobody else can create it there.
    let mut first = true;
    let mut probe = path;
    let real = loop {
        match std::fs::canonicalize(probe) {
            Ok(r) => break r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                first = false;
                probe = match probe.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => return Ok(()),
                };
            }
            Err(e) => return Err(format!("{}: {e}", probe.display())),
        }
    };
    let mut at: Option<&Path> = Some(&real);
    while let Some(p) = at {
        let m = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let what = if first { "file" } else { "directory" };
        if m.uid() != 0 {
            return Err(format!("{what} {} is owned by uid {}, not root", p.display(), m.uid()));
        }
        let sticky_dir = !first && m.mode() & 0o1000 != 0;
        if m.mode() & 0o022 != 0 && !sticky_dir {
            return Err(format!(
                "{what} {} is writable by {} (mode {:o})",
                p.display(),
                if m.mode() & 0o002 != 0 { "others" } else { "its group" },
                m.mode() & 0o7777
            ));
        }
        first = false;
        at = p.parent();
    }
    Ok(())
}

/// Why no instance could be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreachable {
    /// libflux-core could not be loaded from any candidate: each with its error.
    NoLibrary(Vec<(Candidate, String)>),
    /// Running as root, a library the environment named (or a directory
    /// above it) could be written by someone other than root: loading it
    /// would run their code as root.
    Untrusted {
        /// The library.
        lib: Candidate,
        /// The file or directory at fault, and why.
        why: String,
    },
    /// flux_open failed (no instance at FLUX_URI / the system URI).
    NoInstance {
        /// `FLUX_URI`, if set.
        uri: Option<String>,
        /// The library that was loaded.
        lib: Candidate,
    },
}

impl std::error::Error for Unreachable {}

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
            Unreachable::Untrusted { lib, why } => {
                write!(f, "refusing to load {lib} as root: {why}; only a library owned by root and writable by root alone is loaded as root")
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
    fn as_root_a_group_writable_library_is_refused_and_others_load_as_before() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile_dir();
        let lib = dir.join(LIBFLUX);
        std::fs::write(&lib, b"not a library").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o664)).unwrap();
        assert_eq!(root_may_load(&lib, 1000), Ok(()), "only root is protected");
        let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&lib).unwrap());
        if owner == 0 {
            let e = root_may_load(&lib, 0).unwrap_err();
            assert!(e.contains(&lib.display().to_string()) && e.contains("its group"), "{e}");
            std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(root_may_load(&lib, 0), Ok(()));
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            let e = root_may_load(&lib, 0).unwrap_err();
            assert!(e.starts_with("directory ") && e.contains("others"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("fluxacct-discover-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn messages_name_what_was_tried() {
        let env = FluxEnv { libflux: Some("/nonexistent/libflux-core.so.2".into()), ..Default::default() };
        let e = crate::Flux::open(&env).err().expect("no library there").to_string();
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
