//! Registry end to end, against a real registry (Debian's docker-registry, started by the
//! test on 127.0.0.1): build → sign → push → pull into a clean store → run → exact events;
//! and everything that must be refused: a tampered layer, a tampered manifest, a wrong
//! key, an unsigned image under a policy that requires a signature, a tag moved after it
//! was resolved. Offline use (a warm store with the registry down, export/import into a
//! fresh store), credentials (docker config.json, --password-stdin), and interoperability
//! of signatures with independent implementations (OpenSSL for cosign's ECDSA keys and
//! signatures, Debian's `minisign` for file signatures, both directions).

mod common;
#[path = "common/registry.rs"]
mod registry;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use common::Finished;
use registry::Registry;

/// Run the runner with extra environment and, optionally, text on stdin.
fn runner_with(args: &[&str], env: &[(&str, &Path)], stdin: Option<&str>) -> Finished {
    let mut cmd = Command::new(common::runner());
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn runner");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    Finished {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        status: out.status,
    }
}

fn runner(args: &[&str]) -> Finished {
    runner_with(args, &[], None)
}

#[track_caller]
fn ok(f: Finished) -> Finished {
    assert!(
        f.status.success(),
        "runner failed ({}):\n{}{}",
        f.status,
        f.stdout,
        f.stderr
    );
    assert!(!f.stderr.contains("panicked"), "{}", f.stderr);
    f
}

/// A failure: exit 1, one line on stderr that contains every one of `needles`.
#[track_caller]
fn refused(f: Finished, needles: &[&str]) -> String {
    assert_eq!(f.status.code(), Some(1), "{}{}", f.stdout, f.stderr);
    let err = f.stderr.trim_end();
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("runner: error: "), "{err}");
    for n in needles {
        assert!(last.contains(n), "`{n}` missing from: {last}");
    }
    assert!(!err.contains("panicked"), "{err}");
    last.to_string()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A scratch directory per test: keys, policies, stores.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        Work {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `runner keygen`: returns (private, public).
    fn keygen(&self, name: &str) -> (PathBuf, PathBuf) {
        ok(runner(&["keygen", "-o", p(&self.path(name))]));
        (
            self.path(&format!("{name}.key")),
            self.path(&format!("{name}.pub")),
        )
    }

    /// A policy requiring one of `keys` for images under `scope`.
    fn policy(&self, name: &str, scope: &str, keys: &[&Path]) -> PathBuf {
        let keys: Vec<String> = keys.iter().map(|k| format!("{:?}", p(k))).collect();
        let path = self.path(name);
        std::fs::write(
            &path,
            format!(
                r#"{{"images": [{{"scope": "{scope}", "keys": [{}]}}]}}"#,
                keys.join(", ")
            ),
        )
        .unwrap();
        path
    }
}

/// `runner push PKG REF`; returns the index digest it printed.
fn push(pkg: &Path, reference: &str) -> String {
    let out = ok(runner(&["push", p(pkg), reference]));
    let line = out.stdout.trim();
    let (_, digest) = line.rsplit_once('@').expect("name@digest on stdout");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{line}"
    );
    digest.to_string()
}

fn sign(reference: &str, key: &Path) {
    let out = ok(runner(&["sign", reference, "--key", p(key)]));
    assert!(out.stderr.contains("runner: signed "), "{}", out.stderr);
}

/// The committed sigsnoop package, with another description (so another digest).
fn variant(work: &Work, description: &str) -> PathBuf {
    let text = std::fs::read_to_string(common::sigsnoop_package()).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["description"] = description.into();
    let path = work.path(&format!("{}.json", description.replace(' ', "-")));
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    path
}

/// The description on the first line of `runner info` (`name: description`).
fn description(info: &Finished) -> &str {
    let first = info.stdout.lines().next().unwrap_or_default();
    first.split_once(": ").map_or(first, |(_, d)| d)
}

#[test]
#[ignore = "needs BPF (root): scripts/test runs it"]
fn signed_image_from_a_clean_store_runs_and_reports_exact_events() {
    common::require_bpf();
    let reg = Registry::start(None);
    let work = Work::new();
    // build
    let built = work.path("sigsnoop.json");
    let src = common::repo().join("programs/sigsnoop/sigsnoop.bpf.c");
    ok(runner(&["build", p(&src), "-o", p(&built)]));
    // keygen, push, sign
    let (key, public) = work.keygen("cosign");
    let reference = format!("{}/tools/sigsnoop:1.0", reg.addr());
    let digest = push(&built, &reference);
    sign(&reference, &key);
    // pull into a clean store, under a policy that requires the key
    let store = work.path("store");
    let policy = work.policy("policy.json", &format!("{}/tools", reg.addr()), &[&public]);
    let pulled = ok(runner(&[
        "pull",
        &reference,
        "--store",
        p(&store),
        "--policy",
        p(&policy),
    ]));
    assert_eq!(
        pulled.stdout.trim(),
        format!("{}/tools/sigsnoop@{digest}", reg.addr())
    );
    assert!(
        pulled.stderr.contains("signature verified with"),
        "{}",
        pulled.stderr
    );
    // run from the store alone: the registry is gone
    drop(reg);
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let target = sleeper.id() as i64;
    let me = std::process::id() as i64;
    let tracer = common::Tracer::start(&[
        "--store",
        p(&store),
        "--pull",
        "never",
        "--policy",
        p(&policy),
        &reference,
        "-o",
        "json",
        "--duration",
        "30",
    ]);
    // kill(target, 0) from this thread: sigsnoop reports sender, target, signal, result.
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    assert_eq!(unsafe { libc::kill(target as i32, 0) }, 0);
    let done = tracer.stop();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        done.stderr
            .contains(&format!("{digest} signature verified with")),
        "{}",
        done.stderr
    );
    let comm: String = std::thread::current()
        .name()
        .unwrap_or("")
        .chars()
        .take(15)
        .collect();
    let rows: Vec<serde_json::Value> = done
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["tpid"] == target)
        .collect();
    assert_eq!(rows.len(), 1, "{}", done.stdout);
    let row = &rows[0];
    assert_eq!(
        (&row["pid"], &row["sig"], &row["ret"], &row["comm"]),
        (&me.into(), &0.into(), &0.into(), &comm.into()),
        "{row}"
    );
}

#[test]
fn tampered_layer_and_tampered_manifest_are_refused() {
    let reg = Registry::start(None);
    let work = Work::new();
    let pkg = common::sigsnoop_package();
    let text = std::fs::read(&pkg).unwrap();
    // The layer: its digest is the package's.
    let reference = format!("{}/tools/layer:1", reg.addr());
    push(&pkg, &reference);
    let layer = format!(
        "sha256:{}",
        sha256_hex(&text) // the layer is the file, byte for byte
    );
    let file = reg.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    let store = work.path("store");
    let err = refused(
        runner(&["info", "--store", p(&store), &reference]),
        &[&reference, "digest mismatch", &layer],
    );
    assert!(!err.contains('\n'));
    // Nothing unverified entered the store.
    assert!(!store
        .join("blobs/sha256")
        .join(layer.strip_prefix("sha256:").unwrap())
        .exists());

    // The index: the tag still names digest D, the bytes served no longer hash to D.
    let reference = format!("{}/tools/manifest:1", reg.addr());
    let digest = push(&variant(&work, "manifest test"), &reference);
    let file = reg.blob_file(&digest);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(b" ");
    std::fs::write(&file, &bytes).unwrap();
    let f = runner(&["info", "--store", p(&work.path("store2")), &reference]);
    let err = refused(f, &[&reference]);
    assert!(err.to_lowercase().contains("digest"), "{err}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn wrong_key_and_unsigned_are_refused_before_anything_loads() {
    let reg = Registry::start(None);
    let work = Work::new();
    let (key, _) = work.keygen("signer");
    let (other_key, other) = work.keygen("other");
    let signed = format!("{}/tools/signed:1", reg.addr());
    push(&common::sigsnoop_package(), &signed);
    sign(&signed, &key);
    let unsigned = format!("{}/tools/unsigned:1", reg.addr());
    push(&variant(&work, "unsigned"), &unsigned);
    let policy = work.policy("policy.json", &reg.addr(), &[&other]);
    let store = p(&work.path("store")).to_string();
    // `run` too: refused before the package is even parsed, so also without root.
    for cmd in ["info", "run"] {
        let f = runner(&[cmd, "--store", &store, "--policy", p(&policy), &signed]);
        assert!(!f.stderr.contains("attached"), "{}", f.stderr);
        refused(
            f,
            &[
                &signed,
                "no valid signature by",
                p(&other),
                "signed by another key",
            ],
        );
        let f = runner(&[cmd, "--store", &store, "--policy", p(&policy), &unsigned]);
        refused(f, &[&unsigned, "is not signed", p(&other)]);
    }
    // A second signature, by the trusted key, joins the first: now it is accepted (the
    // store answers for what it has; --pull always asks the registry for signatures).
    sign(&signed, &other_key);
    let f = ok(runner(&[
        "info",
        "--store",
        &store,
        "--pull",
        "always",
        "--policy",
        p(&policy),
        &signed,
    ]));
    assert!(
        f.stderr
            .contains(&format!("signature verified with {}", p(&other))),
        "{}",
        f.stderr
    );
    // Without a policy, the unsigned image runs with a one-line warning.
    if Path::new("/etc/runner/policy.json").exists() {
        eprintln!("SKIPPED the no-policy case: /etc/runner/policy.json exists here");
        return;
    }
    let f = ok(runner(&["info", "--store", &store, &unsigned]));
    assert_eq!(
        f.stderr.trim(),
        format!("runner: warning: {unsigned} is not signed (no trust policy)")
    );
}

#[test]
fn a_warm_store_serves_tags_when_the_registry_is_down() {
    let mut reg = Registry::start(None);
    let work = Work::new();
    let (key, public) = work.keygen("k");
    let reference = format!("{}/tools/offline:2", reg.addr());
    let digest = push(&variant(&work, "offline"), &reference);
    sign(&reference, &key);
    let policy = work.policy("policy.json", &reg.addr(), &[&public]);
    let store = p(&work.path("store")).to_string();
    ok(runner(&[
        "pull",
        &reference,
        "--store",
        &store,
        "--policy",
        p(&policy),
    ]));
    reg.stop();
    let base = ["info", "--store", &store, "--policy", p(&policy)];
    // --pull never: the store alone, signature verified offline.
    let f = ok(runner(
        &[&base[..], &["--pull", "never", &reference]].concat(),
    ));
    assert_eq!(description(&f), "offline");
    assert!(f.stderr.contains(&format!("{digest} signature verified")));
    // --pull always: the registry is down, the store answers, and says so in one line.
    let f = ok(runner(
        &[&base[..], &["--pull", "always", &reference]].concat(),
    ));
    let notes: Vec<&str> = f.stderr.lines().collect();
    assert_eq!(
        notes[0],
        format!(
            "runner: registry {} is unreachable; using {reference} from the local store ({digest})",
            reg.addr()
        )
    );
    // A clean store has nothing to offer.
    let f = runner(&[
        "info",
        "--store",
        p(&work.path("empty")),
        "--pull",
        "always",
        &reference,
    ]);
    refused(f, &["unreachable", "not in the local store"]);
    let f = runner(&[
        "info",
        "--store",
        p(&work.path("empty")),
        "--pull",
        "never",
        &reference,
    ]);
    refused(f, &[&reference, "is not in the local store"]);
}

#[test]
fn export_and_import_carry_the_image_and_its_signature() {
    let mut reg = Registry::start(None);
    let work = Work::new();
    let (key, public) = work.keygen("k");
    let reference = format!("{}/tools/airgap:1", reg.addr());
    push(&variant(&work, "air gap"), &reference);
    sign(&reference, &key);
    let a = p(&work.path("a")).to_string();
    ok(runner(&["pull", &reference, "--store", &a]));
    reg.stop();
    let tar = work.path("airgap.tar");
    ok(runner(&[
        "image",
        "export",
        &reference,
        p(&tar),
        "--store",
        &a,
    ]));
    let b = p(&work.path("b")).to_string();
    let f = ok(runner(&["image", "import", p(&tar), "--store", &b]));
    let names: Vec<&str> = f.stdout.lines().collect();
    assert_eq!(names.len(), 2, "the image and its signature: {names:?}");
    assert!(names.contains(&reference.as_str()));
    let policy = work.policy("policy.json", &reg.addr(), &[&public]);
    let f = ok(runner(&[
        "info",
        "--store",
        &b,
        "--pull",
        "never",
        "--policy",
        p(&policy),
        &reference,
    ]));
    assert_eq!(description(&f), "air gap");
    assert!(f.stderr.contains("signature verified with"), "{}", f.stderr);
    // A corrupted archive is refused, and names the blob.
    let mut bytes = std::fs::read(&tar).unwrap();
    let at = bytes.len() - 2000;
    bytes[at] ^= 1;
    std::fs::write(&tar, &bytes).unwrap();
    let c = p(&work.path("c")).to_string();
    let f = runner(&["image", "import", p(&tar), "--store", &c]);
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    assert!(
        f.stderr.contains("corrupt") || f.stderr.contains("archive"),
        "{}",
        f.stderr
    );
}

/// A proxy in front of the registry that moves the tag to another image right after the
/// runner resolved it: before forwarding the first request that follows the tag's.
fn moving_proxy(
    registry: String,
    repo_tag: String,
    move_tag: impl Fn() + Send + Sync + 'static,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // 0: tag not asked yet, 1: asked, 2: moved
    let state = Arc::new(AtomicU8::new(0));
    let move_tag = Arc::new(move_tag);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let Ok(server) = TcpStream::connect(&registry) else {
                break;
            };
            let (state, move_tag, repo_tag) = (state.clone(), move_tag.clone(), repo_tag.clone());
            let (mut s2c_from, mut s2c_to) =
                (server.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2c_from, &mut s2c_to);
                let _ = s2c_to.shutdown(std::net::Shutdown::Both);
            });
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client);
                let mut server = server;
                loop {
                    // Requests from the runner's pull have no body: headers only.
                    let mut head = Vec::new();
                    loop {
                        let mut line = String::new();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        head.extend_from_slice(line.as_bytes());
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let first = String::from_utf8_lossy(&head)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    if first.contains(&format!("/manifests/{repo_tag} ")) {
                        state.store(1, Ordering::SeqCst);
                    } else if state.load(Ordering::SeqCst) == 1 {
                        move_tag();
                        state.store(2, Ordering::SeqCst);
                    }
                    if server.write_all(&head).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn a_tag_moved_after_it_was_resolved_is_not_what_runs() {
    let reg = Registry::start(None);
    let work = Work::new();
    let (key, public) = work.keygen("k");
    let direct = format!("{}/tools/moving:1.0", reg.addr());
    let signed = push(&variant(&work, "the signed one"), &direct);
    sign(&direct, &key);
    let other = variant(&work, "the one moved in");
    let direct2 = direct.clone();
    let proxy = moving_proxy(reg.addr(), "1.0".into(), move || {
        push(&other, &direct2);
    });
    let via = format!("127.0.0.1:{proxy}/tools/moving:1.0");
    let policy = work.policy(
        "policy.json",
        &format!("127.0.0.1:{proxy}/tools"),
        &[&public],
    );
    let store = p(&work.path("store")).to_string();
    let f = ok(runner(&[
        "info",
        "--store",
        &store,
        "--policy",
        p(&policy),
        &via,
    ]));
    assert_eq!(description(&f), "the signed one");
    assert!(
        f.stderr.contains(&format!("{signed} signature verified")),
        "{}",
        f.stderr
    );
    // The tag did move meanwhile; what it names now is unsigned and refused.
    let f = runner(&[
        "info",
        "--store",
        &store,
        "--pull",
        "always",
        "--policy",
        p(&policy),
        &via,
    ]);
    refused(f, &[&via, "is not signed"]);
}

#[test]
fn credentials_from_docker_config_and_password_stdin() {
    let reg = Registry::start(Some(("tester", "s3cret")));
    let work = Work::new();
    let reference = format!("{}/private/pkg:1", reg.addr());
    let pkg = common::sigsnoop_package();
    let empty = work.path("nodocker");
    std::fs::create_dir(&empty).unwrap();
    // No credentials: refused, and the error says how to give them.
    let f = runner_with(
        &["push", p(&pkg), &reference],
        &[("DOCKER_CONFIG", &empty)],
        None,
    );
    refused(
        f,
        &[&reference, "refused the credentials", "--password-stdin"],
    );
    // Docker's config.json.
    let docker = work.path("docker");
    std::fs::create_dir(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "dGVzdGVyOnMzY3JldA=="}}}}}}"#,
            reg.addr()
        ),
    )
    .unwrap();
    ok(runner_with(
        &["push", p(&pkg), &reference],
        &[("DOCKER_CONFIG", &docker)],
        None,
    ));
    // --username with --password-stdin, for pull.
    let store = p(&work.path("store")).to_string();
    let args = [
        "pull",
        &reference,
        "--store",
        &store,
        "--username",
        "tester",
        "--password-stdin",
    ];
    ok(runner_with(
        &args,
        &[("DOCKER_CONFIG", &empty)],
        Some("s3cret\n"),
    ));
    let f = runner_with(
        &[
            "pull",
            &reference,
            "--store",
            p(&work.path("s2")),
            "--username",
            "tester",
            "--password-stdin",
        ],
        &[("DOCKER_CONFIG", &empty)],
        Some("wrong\n"),
    );
    refused(f, &[&reference, "refused the credentials"]);
}

#[test]
fn cosign_keys_and_signatures_interoperate_with_openssl() {
    let reg = Registry::start(None);
    let work = Work::new();
    // runner's key and signature, checked by OpenSSL.
    let (key, public) = work.keygen("runner");
    let reference = format!("{}/tools/openssl:1", reg.addr());
    let digest = push(&common::sigsnoop_package(), &reference);
    sign(&reference, &key);
    let store = work.path("store");
    ok(runner(&["pull", &reference, "--store", p(&store)]));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("index.json")).unwrap()).unwrap();
    let sig_name = format!(
        "{}/tools/openssl:{}.sig",
        reg.addr(),
        digest.replace(':', "-")
    );
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == sig_name.as_str())
        .expect("the signature manifest is in the store");
    let blob = |d: &str| std::fs::read(store.join("blobs/sha256").join(&d[7..])).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(entry["digest"].as_str().unwrap())).unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let payload = blob(layer["digest"].as_str().unwrap());
    let payload_json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        payload_json["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert_eq!(
        payload_json["critical"]["type"],
        "cosign container image signature"
    );
    let sig = layer["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap();
    let der = std::process::Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(sig.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap()
        .stdout;
    std::fs::write(work.path("payload"), &payload).unwrap();
    std::fs::write(work.path("sig.der"), &der).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify", p(&public), "-signature"])
        .arg(work.path("sig.der"))
        .arg(work.path("payload"))
        .output()
        .expect("openssl (scripts/install-deps)");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");

    // An OpenSSL key signs with the runner; the runner verifies with OpenSSL's public key.
    let sh = |cmd: &str| {
        let s = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(work.dir.path())
            .status()
            .unwrap();
        assert!(s.success(), "{cmd}");
    };
    sh("openssl ecparam -name prime256v1 -genkey -noout -out ec.pem && openssl pkcs8 -topk8 -nocrypt -in ec.pem -out ossl.key && openssl ec -in ec.pem -pubout -out ossl.pub 2>/dev/null");
    let other = format!("{}/tools/openssl:2", reg.addr());
    push(&variant(&work, "openssl key"), &other);
    sign(&other, &work.path("ossl.key"));
    let policy = work.policy("policy.json", &reg.addr(), &[&work.path("ossl.pub")]);
    let f = ok(runner(&[
        "info",
        "--store",
        p(&store),
        "--policy",
        p(&policy),
        &other,
    ]));
    assert!(f.stderr.contains("ossl.pub"), "{}", f.stderr);
    // A SEC1 key (`EC PRIVATE KEY`, what `openssl ecparam -genkey` writes) works too.
    sign(&other, &work.path("ec.pem"));
}

#[test]
fn minisign_file_signatures_interoperate_both_ways() {
    let work = Work::new();
    let sh = |cmd: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(work.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let pkg = work.path("pkg.json");
    std::fs::copy(common::sigsnoop_package(), &pkg).unwrap();
    // Signed by Debian's minisign, verified by the runner.
    sh("minisign -G -W -p tool.pub -s tool.key && minisign -S -s tool.key -m pkg.json");
    let policy = work.path("policy.json");
    let scope = std::fs::canonicalize(work.dir.path()).unwrap();
    let inline = std::fs::read_to_string(work.path("tool.pub")).unwrap();
    let inline = inline.lines().nth(1).unwrap().to_string();
    std::fs::write(
        &policy,
        format!(
            r#"{{"files": [{{"scope": "{}", "keys": ["{inline}"]}}]}}"#,
            scope.display()
        ),
    )
    .unwrap();
    let f = ok(runner(&["info", p(&pkg), "--policy", p(&policy)]));
    assert!(
        f.stderr.contains("signature verified with inline key"),
        "{}",
        f.stderr
    );
    // `run` takes the same path: a tampered file is refused before anything loads.
    let mut text = std::fs::read(&pkg).unwrap();
    text.push(b'\n');
    let tampered = work.path("tampered.json");
    std::fs::write(&tampered, &text).unwrap();
    std::fs::copy(
        work.path("pkg.json.minisig"),
        work.path("tampered.json.minisig"),
    )
    .unwrap();
    refused(
        runner(&["run", "--policy", p(&policy), p(&tampered)]),
        &[
            "tampered.json",
            "no valid signature by inline key",
            "does not verify",
        ],
    );
    std::fs::remove_file(work.path("tampered.json.minisig")).unwrap();
    refused(
        runner(&["run", "--policy", p(&policy), p(&tampered)]),
        &["tampered.json", "is not signed", "inline key"],
    );
    // Signed by the runner, verified by Debian's minisign.
    ok(runner(&[
        "keygen",
        "--minisign",
        "-o",
        p(&work.path("runner")),
    ]));
    let second = work.path("second.json");
    std::fs::copy(common::sigsnoop_package(), &second).unwrap();
    ok(runner(&[
        "sign",
        p(&second),
        "--key",
        p(&work.path("runner.key")),
    ]));
    let out = sh("minisign -V -p runner.pub -m second.json");
    assert!(
        out.contains("Signature and comment signature verified"),
        "{out}"
    );
}

/// `schemas/policy.schema.json` and the runner's reader agree: the README's example is
/// valid for both, and each broken policy is rejected by both.
#[test]
fn policy_schema_and_reader_agree() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo().join("schemas/policy.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let work = Work::new();
    std::fs::write(work.path("release.pub"), {
        ok(runner(&["keygen", "-o", p(&work.path("k"))]));
        std::fs::read(work.path("k.pub")).unwrap()
    })
    .unwrap();
    let example = r#"{
      "default": "reject",
      "images": [
        {"scope": "registry.example.com/tools", "keys": ["release.pub"]},
        {"scope": "localhost:5000", "insecure_accept_unsigned": true}
      ],
      "files": [
        {"scope": "/opt/runner/packages", "keys": ["RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"]}
      ]
    }"#;
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    assert!(
        squeeze(&readme).contains(&squeeze(example)),
        "the README shows this example"
    );
    let pkg = common::sigsnoop_package();
    let check = |name: &str, text: &str, valid: bool| {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            validator.is_valid(&value),
            valid,
            "schema on {name}: {text}"
        );
        let path = work.path(name);
        std::fs::write(&path, text).unwrap();
        let f = runner(&["info", p(&pkg), "--policy", p(&path)]);
        if valid {
            // The example covers no file here and rejects by default: refused, by scope.
            refused(
                f,
                &["is not covered by the trust policy", "default is to reject"],
            );
        } else {
            refused(f, &["trust policy", name]);
        }
    };
    check("example.json", example, true);
    check(
        "both.json",
        r#"{"images": [{"scope": "a.example", "keys": ["k.pub"], "insecure_accept_unsigned": true}]}"#,
        false,
    );
    check(
        "neither.json",
        r#"{"images": [{"scope": "a.example"}]}"#,
        false,
    );
    check("unknown.json", r#"{"image": []}"#, false);
    check("default.json", r#"{"default": "allow"}"#, false);
    // `warn` lets an uncovered file run, with one line saying so.
    let warn = work.path("warn.json");
    std::fs::write(&warn, r#"{"default": "warn"}"#).unwrap();
    let f = ok(runner(&["info", p(&pkg), "--policy", p(&warn)]));
    assert_eq!(
        f.stderr.trim(),
        format!(
            "runner: warning: {} is not signed (no entry of the trust policy covers it)",
            pkg.display()
        )
    );
}

#[test]
fn several_architectures_share_one_index() {
    let reg = Registry::start(None);
    let work = Work::new();
    let host = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let foreign = if host == "amd64" { "arm64" } else { "amd64" };
    let mine = variant(&work, "for this machine");
    let theirs = variant(&work, "for another machine");
    let both = format!("{}/tools/multi:1", reg.addr());
    ok(runner(&[
        "push",
        &format!("{}@{host}", p(&mine)),
        &format!("{}@{foreign}", p(&theirs)),
        &both,
    ]));
    let store = p(&work.path("store")).to_string();
    let f = ok(runner(&["info", "--store", &store, &both]));
    assert_eq!(description(&f), "for this machine");
    // The index lists both platforms, each manifest with its artifactType.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path("store/index.json")).unwrap()).unwrap();
    let top = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == both.as_str())
        .unwrap();
    assert_eq!(top["mediaType"], "application/vnd.oci.image.index.v1+json");
    let digest = top["digest"].as_str().unwrap();
    let blob = std::fs::read(work.path("store/blobs/sha256").join(&digest[7..])).unwrap();
    let image: serde_json::Value = serde_json::from_slice(&blob).unwrap();
    let platforms: Vec<(&str, &str)> = image["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["artifactType"], "application/vnd.runner.package.v1+json");
            (
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(platforms, [("linux", host), ("linux", foreign)]);
    // Only another architecture: refused, naming what there is.
    let only = format!("{}/tools/foreign:1", reg.addr());
    ok(runner(&[
        "push",
        &format!("{}@{foreign}", p(&theirs)),
        &only,
    ]));
    refused(
        runner(&["info", "--store", &store, &only]),
        &[
            &only,
            &format!("has no package for {host}"),
            &format!("linux/{foreign}"),
        ],
    );
    // A little-endian object is not pushed for a big-endian architecture.
    let f = runner(&["push", &format!("{}@s390x", p(&mine)), &only]);
    refused(f, &["s390x", "little-endian", "big-endian"]);
    // Two packages for one architecture is a usage error.
    let f = runner(&["push", p(&mine), p(&theirs), &only]);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr);
}
