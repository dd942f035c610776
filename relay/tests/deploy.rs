//! The deploy files (Dockerfile, compose file, systemd unit) against the relay as it is: no
//! Docker engine runs here, so what can be checked is checked. Every `RELAY_*` setting they
//! name must be one the relay reads; the binary, run with the image's own settings, must
//! serve the app and stop cleanly on SIGTERM (what `docker stop` and systemd send); the
//! unit must pass `systemd-analyze verify` (Debian's systemd; missing, the test fails and
//! says what to install).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::CommandFactory;
use common::{INDEX_HTML, TestResult, http_get, static_dir};

const FILES: &[&str] = &[
    "Dockerfile",
    "deploy/compose.yaml",
    "deploy/compose.scaled.yaml",
    "deploy/linkcall-relay.service",
    "deploy/example.env",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `RELAY_*` names in `text`.
fn settings_named(text: &str) -> BTreeSet<String> {
    text.match_indices("RELAY_")
        .map(|(at, _)| text[at..].chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect())
        .collect()
}

#[test]
fn the_deploy_files_name_only_settings_the_relay_reads() -> TestResult {
    let known: BTreeSet<String> =
        relay::Config::command().get_arguments().filter_map(|arg| Some(arg.get_env()?.to_str()?.to_owned())).collect();
    assert!(known.contains("RELAY_TLS_CERT") && known.len() > 20, "{known:?}");
    let mut named = BTreeSet::new();
    for file in FILES {
        let text = std::fs::read_to_string(root().join(file))?;
        let unknown: Vec<String> = settings_named(&text).difference(&known).cloned().collect();
        assert!(unknown.is_empty(), "{file} sets {unknown:?}, which the relay does not read");
        named.extend(settings_named(&text));
    }
    for needed in ["RELAY_TLS_CERT", "RELAY_TLS_KEY", "RELAY_TURN_SECRET", "RELAY_TURN_URLS", "RELAY_STATIC_DIR"] {
        assert!(named.contains(needed), "no deploy file sets {needed}");
    }
    Ok(())
}

/// The `ENV` settings of the Dockerfile's final image.
fn image_environment() -> Result<Vec<(String, String)>, Box<dyn std::error::Error>> {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile"))?;
    let (_, final_stage) = dockerfile.rsplit_once("\nFROM ").ok_or("one stage only")?;
    let env = final_stage.split("\nENV ").nth(1).ok_or("no ENV in the final stage")?;
    let mut settings = Vec::new();
    for line in env.lines() {
        let line = line.trim().trim_end_matches('\\').trim();
        let Some((name, value)) = line.split_once('=') else { break };
        settings.push((name.to_owned(), value.to_owned()));
    }
    Ok(settings)
}

#[tokio::test]
async fn the_binary_with_the_images_settings_serves_the_app_and_stops_on_sigterm() -> TestResult {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut settings = image_environment()?;
    assert!(settings.iter().any(|(name, _)| name == "RELAY_STATIC_DIR"), "{settings:?}");
    // The same image, on a free loopback port and this test's page.
    let dir = static_dir()?;
    for (name, value) in &mut settings {
        match name.as_str() {
            "RELAY_BIND" => *value = "127.0.0.1".into(),
            "RELAY_PORT" => *value = port.to_string(),
            "RELAY_STATIC_DIR" => *value = dir.to_string_lossy().into_owned(),
            _ => {}
        }
    }
    let mut relay = tokio::process::Command::new(env!("CARGO_BIN_EXE_relay"))
        .env_clear()
        .envs(settings)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    let health = loop {
        match http_get(addr, "/healthz").await {
            Ok(response) => break response,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(error) => return Err(error),
        }
    };
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    let page = http_get(addr, "/r/abcdefghijklmnopqrstuvwxyz").await?;
    assert_eq!((page.status, page.body.as_str()), (200, INDEX_HTML));

    let pid = relay.id().ok_or("the relay exited early")?.to_string();
    let stopping = Instant::now();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status()?.success());
    let status = tokio::time::timeout(Duration::from_secs(10), relay.wait()).await??;
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert!(stopping.elapsed() < Duration::from_secs(5), "stopping took {:?}", stopping.elapsed());
    Ok(())
}

#[test]
fn the_systemd_unit_verifies() -> TestResult {
    if let Err(e) = std::process::Command::new("systemd-analyze").arg("--version").output() {
        return Err(format!(
            "cannot run `systemd-analyze` ({e}): install Debian's systemd (`apt-get install systemd`), \
             or run `bash scripts/test.sh`, which does"
        )
        .into());
    }
    // The unit as installed, pointing at this build's binary.
    let unit = std::fs::read_to_string(root().join("deploy/linkcall-relay.service"))?
        .replace("/usr/local/bin/relay", env!("CARGO_BIN_EXE_relay"));
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("linkcall-relay.service");
    std::fs::write(&path, unit)?;
    let verified = std::process::Command::new("systemd-analyze").arg("verify").arg(&path).output()?;
    let complaints = String::from_utf8_lossy(&verified.stderr);
    assert!(verified.status.success() && complaints.trim().is_empty(), "systemd-analyze verify: {complaints}");
    Ok(())
}
