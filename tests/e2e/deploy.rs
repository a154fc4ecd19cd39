//! The deployment files, checked as far as these machines allow (no Docker,
//! no cluster): docker-compose.yml is consistent and its configuration really
//! starts each service; the Kubernetes manifests parse and every reference in
//! them (labels, ports, ConfigMaps, Secrets, kustomize resources) resolves.

use serde::Deserialize as _;
use serde_yaml::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use throughcare_e2e::{Process, binary, wait_for, who_am_i};
use throughcare_platform::identity::AuthConfig;
use throughcare_platform::testing::{KAFKA_ENV, fresh_postgres, unique};

const SERVICES: [&str; 3] = ["referrals", "sharing", "indicators"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

fn yaml(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            let mut value = Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
            value
                .apply_merge()
                .unwrap_or_else(|e| panic!("{}: merge keys: {e}", path.display()));
            value
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path)?.as_str()
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

fn seq<'a>(value: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    at(value, path)
        .and_then(Value::as_sequence)
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

/// `${NAME:-default}` as compose resolves it when NAME is unset.
fn interpolate(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let expression = &rest[start + 2..end];
        let (_, default) = expression.split_once(":-").unwrap_or_else(|| {
            panic!("${{{expression}}} has no default: compose would need it set")
        });
        out.push_str(default);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    at(service, &["environment"])
        .and_then(Value::as_mapping)
        .expect("an environment mapping")
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_owned(),
            };
            (k.as_str().unwrap().to_owned(), interpolate(&value))
        })
        .collect()
}

#[test]
fn compose_is_consistent() {
    let root = repo();
    let compose = yaml(&root.join("docker-compose.yml")).remove(0);
    let services = at(&compose, &["services"])
        .and_then(Value::as_mapping)
        .unwrap();
    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    for expected in ["kafka", "postgres", "otel-collector", "jaeger"]
        .into_iter()
        .chain(SERVICES)
    {
        assert!(names.contains(expected), "compose runs {expected}");
    }
    for (name, service) in services {
        let name = name.as_str().unwrap();
        for port in seq(service, &["ports"]) {
            let port = port.as_str().unwrap();
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name} binds {port} beyond loopback"
            );
        }
        for volume in seq(service, &["volumes"]) {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            if let Some(file) = source.strip_prefix("./") {
                assert!(
                    root.join(file).exists(),
                    "{name} mounts the missing {source}"
                );
            }
        }
        for dependency in at(service, &["depends_on"])
            .and_then(Value::as_mapping)
            .map(Mapping::keys)
            .into_iter()
            .flatten()
        {
            let dependency = dependency.as_str().unwrap();
            assert!(
                names.contains(dependency),
                "{name} depends on unknown {dependency}"
            );
        }
    }
    for service in SERVICES {
        let definition = &services[service];
        assert_eq!(
            seq(definition, &["command"])[0].as_str(),
            Some(format!("throughcare-{service}").as_str())
        );
        assert!(
            at(definition, &["healthcheck", "test"]).is_some(),
            "{service} has a health check"
        );
        let env = environment(definition);
        assert!(env["THROUGHCARE_DATABASE__URL"].ends_with(&format!("/throughcare_{service}")));
        assert_eq!(
            env.contains_key("THROUGHCARE_SEALING__KEYS__K1"),
            service != "indicators",
            "only referrals and sharing hold the sealing key"
        );
        assert_eq!(
            env.contains_key("THROUGHCARE_AT_REST__KEYS__R1"),
            service == "sharing",
            "only sharing holds the at-rest key"
        );
        assert_eq!(
            env.contains_key("THROUGHCARE_AUDIT__SIGNING_KEY"),
            service == "sharing",
            "only sharing holds the audit signing key"
        );
        assert_eq!(
            env.contains_key("THROUGHCARE_PSEUDONYM_KEY"),
            service != "indicators",
            "only the services that mint person keys hold the pseudonym key"
        );
    }
    let init = std::fs::read_to_string(root.join("deploy/compose/postgres-init.sql")).unwrap();
    for service in SERVICES {
        assert!(
            init.contains(&format!("throughcare_{service}")),
            "a database for {service}"
        );
    }
}

/// Each service, started exactly as compose configures it (its environment
/// and the mounted configuration file), with only the addresses of Kafka and
/// PostgreSQL swapped for the test's, serves and knows compose's callers.
#[tokio::test]
async fn compose_configuration_starts_every_service() {
    let root = repo();
    let compose = yaml(&root.join("docker-compose.yml")).remove(0);
    let brokers = std::env::var(KAFKA_ENV).expect("the broker address from tests/run.sh");
    let prefix = format!("{}.", unique("compose"));
    let logs = tempfile::TempDir::new().unwrap();
    let mut running = Vec::new();
    for service in SERVICES {
        let mut env = environment(&compose["services"][service]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        env.insert(
            "THROUGHCARE_GRPC__LISTEN".into(),
            format!("127.0.0.1:{port}"),
        );
        env.insert("THROUGHCARE_DATABASE__URL".into(), fresh_postgres().await);
        env.insert("THROUGHCARE_BUS__BROKERS".into(), brokers.clone());
        env.insert("THROUGHCARE_BUS__TOPIC_PREFIX".into(), prefix.clone());
        env.remove("THROUGHCARE_TELEMETRY__OTLP_ENDPOINT");
        let mounted = env
            .remove("THROUGHCARE_CONFIG")
            .expect("compose names the configuration file");
        assert_eq!(mounted, "/etc/throughcare/throughcare.toml");
        let process = Process::spawn(
            service,
            Command::new(binary(&format!("throughcare-{service}")))
                .env_clear()
                .envs(&env)
                .env(
                    "THROUGHCARE_CONFIG",
                    root.join("deploy/compose/throughcare.toml"),
                )
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(logs.path().join(service)).unwrap()),
        );
        running.push((process, format!("http://127.0.0.1:{port}")));
    }
    for (process, endpoint) in &mut running {
        let log = logs.path().join(&process.name);
        wait_for(
            process,
            endpoint,
            "throughcare.identity.v1.IdentityService",
            &log,
        )
        .await;
        let me = who_am_i(endpoint, "compose-qk1-analyst-token")
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", process.name));
        assert_eq!(me, ("QK1".to_owned(), "analyst".to_owned()));
    }
    for (process, _) in running {
        assert!(process.terminate(Duration::from_secs(30)).await.success());
    }
}

struct Manifests {
    objects: Vec<Value>,
}

impl Manifests {
    fn load() -> Self {
        let dir = repo().join("deploy/k8s");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let objects = files.iter().flat_map(|f| yaml(f)).collect();
        Self { objects }
    }

    fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects.iter().find(|o| {
            str_at(o, &["kind"]) == Some(kind) && str_at(o, &["metadata", "name"]) == Some(name)
        })
    }

    fn has(&self, kind: &str, name: &str) -> bool {
        self.find(kind, name).is_some()
    }
}

#[test]
fn kubernetes_manifests_parse_and_every_reference_resolves() {
    let root = repo();
    let kustomization = yaml(&root.join("deploy/kustomization.yaml")).remove(0);
    let listed: BTreeSet<String> = seq(&kustomization, &["resources"])
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(root.join("deploy/k8s"))
        .unwrap()
        .map(|e| format!("k8s/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    assert_eq!(
        listed, present,
        "kustomize applies every manifest, and only those"
    );
    let mut generated = BTreeSet::new();
    for generator in seq(&kustomization, &["configMapGenerator"]) {
        generated.insert(str_at(generator, &["name"]).unwrap().to_owned());
        for file in seq(generator, &["files"]) {
            assert!(root.join("deploy").join(file.as_str().unwrap()).exists());
        }
    }

    let manifests = Manifests::load();
    for object in &manifests.objects {
        for field in ["apiVersion", "kind"] {
            assert!(
                str_at(object, &[field]).is_some(),
                "every object has {field}: {object:?}"
            );
        }
        assert!(str_at(object, &["metadata", "name"]).is_some());
    }
    let config_map = |name: &str| manifests.has("ConfigMap", name) || generated.contains(name);
    let deployments = manifests
        .objects
        .iter()
        .filter(|o| str_at(o, &["kind"]) == Some("Deployment"));
    for deployment in deployments {
        let name = str_at(deployment, &["metadata", "name"]).unwrap();
        let selector = at(deployment, &["spec", "selector", "matchLabels"]).unwrap();
        let labels = at(deployment, &["spec", "template", "metadata", "labels"]).unwrap();
        for (key, value) in selector.as_mapping().unwrap() {
            assert_eq!(
                labels.get(key),
                Some(value),
                "{name}'s pods match its selector"
            );
        }
        let service = manifests
            .find("Service", name)
            .unwrap_or_else(|| panic!("{name} has a Service"));
        assert_eq!(
            at(service, &["spec", "selector"]),
            Some(selector),
            "{name}'s Service selects its pods"
        );
        let pod = at(deployment, &["spec", "template", "spec"]).unwrap();
        let port_names: BTreeSet<&str> = seq(pod, &["containers"])
            .iter()
            .flat_map(|c| seq(c, &["ports"]))
            .filter_map(|p| str_at(p, &["name"]))
            .collect();
        for port in seq(service, &["spec", "ports"]) {
            let target = str_at(port, &["targetPort"]).unwrap();
            assert!(
                port_names.contains(target),
                "{name}'s Service targets a named container port {target}"
            );
        }
        for volume in seq(pod, &["volumes"]) {
            if let Some(secret) = str_at(volume, &["secret", "secretName"]) {
                assert!(
                    manifests.has("Secret", secret),
                    "{name} mounts the unknown Secret {secret}"
                );
            }
            if let Some(map) = str_at(volume, &["configMap", "name"]) {
                assert!(config_map(map), "{name} mounts the unknown ConfigMap {map}");
            }
        }
        for container in seq(pod, &["containers"]) {
            for source in seq(container, &["envFrom"]) {
                if let Some(secret) = str_at(source, &["secretRef", "name"]) {
                    assert!(
                        manifests.has("Secret", secret),
                        "{name} reads the unknown Secret {secret}"
                    );
                }
                if let Some(map) = str_at(source, &["configMapRef", "name"]) {
                    assert!(config_map(map), "{name} reads the unknown ConfigMap {map}");
                }
            }
            for variable in seq(container, &["env"]) {
                if let Some(reference) = at(variable, &["valueFrom", "secretKeyRef"]) {
                    let secret = manifests
                        .find("Secret", str_at(reference, &["name"]).unwrap())
                        .unwrap_or_else(|| panic!("{name} reads an unknown Secret"));
                    let key = str_at(reference, &["key"]).unwrap();
                    assert!(
                        at(secret, &["stringData", key]).is_some(),
                        "{name} reads a missing key {key}"
                    );
                }
            }
        }
    }

    // Each service has its Deployment, Service and TLS material; only
    // referrals and sharing get the sealing key, only sharing the at-rest key.
    for service in SERVICES {
        let deployment = manifests
            .find("Deployment", service)
            .expect("a Deployment per service");
        let container = &seq(deployment, &["spec", "template", "spec", "containers"])[0];
        assert_eq!(
            seq(container, &["command"])[0].as_str(),
            Some(format!("throughcare-{service}").as_str())
        );
        let secrets: BTreeSet<&str> = seq(container, &["envFrom"])
            .iter()
            .filter_map(|s| str_at(s, &["secretRef", "name"]))
            .collect();
        assert_eq!(
            secrets.contains("throughcare-sealing-keys"),
            service != "indicators"
        );
        assert_eq!(
            secrets.contains("sharing-at-rest-keys"),
            service == "sharing"
        );
        let tls = manifests
            .find("Secret", &format!("{service}-tls"))
            .expect("TLS material per service");
        for key in ["tls.crt", "tls.key", "ca.crt"] {
            assert!(
                at(tls, &["stringData", key]).is_some(),
                "{service}-tls has {key}"
            );
        }
    }
    let indicators = manifests.find("Deployment", "indicators").unwrap();
    assert_eq!(
        at(indicators, &["spec", "replicas"]).and_then(Value::as_u64),
        Some(1)
    );
    assert_eq!(
        str_at(indicators, &["spec", "strategy", "type"]),
        Some("Recreate")
    );

    // The registry in the ConfigMap is one the services accept.
    let config = manifests.find("ConfigMap", "throughcare-config").unwrap();
    let file = str_at(config, &["data", "throughcare.toml"]).unwrap();
    #[derive(serde::Deserialize)]
    struct File {
        auth: AuthConfig,
    }
    let auth = toml::from_str::<File>(file)
        .expect("the registry parses")
        .auth;
    throughcare_platform::identity::Authenticator::new(&auth).expect("a valid registry");
    assert!(
        auth.tokens.is_empty(),
        "a deployment identifies callers by certificate only"
    );
}
