//! A real LDAP directory for the connector tests: Debian's `slapd` on loopback, with its own
//! configuration, a test CA and certificate (LDAPS and StartTLS), seeded with people and groups
//! by `ldapadd` (ldap-utils). tests/run installs both; a missing one fails the test loudly.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The suffix of the test directory.
pub const BASE: &str = "dc=corp,dc=example";
/// The service account the connectors bind as.
pub const READER_DN: &str = "cn=reader,dc=corp,dc=example";
pub const READER_PASSWORD: &str = "reader-password";
const ADMIN_DN: &str = "cn=admin,dc=corp,dc=example";
const ADMIN_PASSWORD: &str = "admin-password";

/// People of the seeded directory: (uid, password, cn, mail, groups).
pub const PEOPLE: [(&str, &str, &str, &str, &[&str]); 2] = [
    (
        "erin",
        "erin-password",
        "Erin Directory",
        "erin@corp.example",
        &["dev"],
    ),
    (
        "frank",
        "frank-password",
        "Frank Directory",
        "frank@corp.example",
        &["finance"],
    ),
];

/// A running slapd; killed when dropped.
pub struct Directory {
    child: Child,
    /// `ldap://127.0.0.1:<port>` (StartTLS offered).
    pub ldap_url: String,
    /// `ldaps://127.0.0.1:<port>`.
    pub ldaps_url: String,
    /// The test CA's certificate (PEM) the directory's certificate is signed by.
    pub ca_pem: String,
    dir: PathBuf,
}

impl Drop for Directory {
    fn drop(&mut self) {
        self.stop();
    }
}

fn slapd() -> PathBuf {
    let p = PathBuf::from("/usr/sbin/slapd");
    assert!(
        p.exists(),
        "slapd is not installed (tests/run installs the Debian packages slapd and ldap-utils)"
    );
    p
}

impl Directory {
    /// A seeded directory in `dir` (its database, configuration and certificates).
    pub fn start(dir: &Path) -> Self {
        let dir = dir.join("slapd");
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let (ca_pem, cert_pem, key_pem) = certificates();
        std::fs::write(dir.join("ca.pem"), &ca_pem).unwrap();
        std::fs::write(dir.join("server.pem"), cert_pem).unwrap();
        std::fs::write(dir.join("server.key"), key_pem).unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("slapd.conf"),
            format!(
                "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {d}/slapd.pid
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
database mdb
maxsize 16777216
suffix \"{BASE}\"
rootdn \"{ADMIN_DN}\"
rootpw {ADMIN_PASSWORD}
directory {d}/db
overlay memberof
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact=\"{READER_DN}\" read by * none
"
            ),
        )
        .unwrap();
        let ldap_port = crate::ControlPlane::free_port();
        let ldaps_port = crate::ControlPlane::free_port();
        let ldap_url = format!("ldap://127.0.0.1:{ldap_port}");
        let ldaps_url = format!("ldaps://127.0.0.1:{ldaps_port}");
        let mut me = Self {
            child: Command::new("true").spawn().unwrap(),
            ldap_url,
            ldaps_url,
            ca_pem,
            dir,
        };
        me.run();
        me.modify("ldapadd", &seed());
        me
    }

    fn run(&mut self) {
        let log = std::fs::File::create(self.dir.join("slapd.log")).unwrap();
        self.child = Command::new(slapd())
            .arg("-f")
            .arg(self.dir.join("slapd.conf"))
            .args(["-h", &format!("{}/ {}/", self.ldap_url, self.ldaps_url)])
            // In the foreground (no fork), logging only what goes wrong.
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("slapd");
        let started = Instant::now();
        let addr = self.ldap_url.trim_start_matches("ldap://").to_string();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "slapd did not start: {}",
                std::fs::read_to_string(self.dir.join("slapd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the directory (its database stays): what an outage looks like.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again after [`Directory::stop`].
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// An ldap-utils `tool` bound as the directory's admin, over plain LDAP on loopback (the
    /// test's own access; connectors use TLS).
    fn as_admin(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        cmd.args([
            "-x",
            "-H",
            &self.ldap_url,
            "-D",
            ADMIN_DN,
            "-w",
            ADMIN_PASSWORD,
        ]);
        cmd
    }

    /// Runs `tool` (ldapadd, ldapmodify, ldapdelete) as the directory's admin with `input`.
    pub fn modify(&self, tool: &str, input: &str) {
        use std::io::Write;
        let mut child = self
            .as_admin(tool)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool} (ldap-utils): {e}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The `entryUUID` of person `uid` (what a connector's subject is made from by default).
    pub fn entry_uuid(&self, uid: &str) -> String {
        let out = self
            .as_admin("ldapsearch")
            .arg("-LLL")
            .args([
                "-b",
                &format!("ou=people,{BASE}"),
                &format!("(uid={uid})"),
                "entryUUID",
            ])
            .output()
            .expect("ldapsearch (ldap-utils)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("entryUUID: "))
            .unwrap_or_else(|| panic!("no entryUUID for {uid}"))
            .to_string()
    }
}

/// The seed: the organisation, the service account, people and groups.
fn seed() -> String {
    let mut ldif = format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: corp\no: Corp\n\n\
         dn: {READER_DN}\nobjectClass: person\ncn: reader\nsn: reader\nuserPassword: {READER_PASSWORD}\n\n\
         dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n"
    );
    for (uid, password, cn, mail, _) in PEOPLE {
        ldif.push_str(&format!(
            "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\nsn: {uid}\nmail: {mail}\nuserPassword: {password}\n\n"
        ));
    }
    for group in ["dev", "finance"] {
        ldif.push_str(&format!(
            "dn: cn={group},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {group}\n"
        ));
        for (uid, _, _, _, groups) in PEOPLE {
            if groups.contains(&group) {
                ldif.push_str(&format!("member: uid={uid},ou=people,{BASE}\n"));
            }
        }
        ldif.push('\n');
    }
    ldif
}

/// A test CA and a certificate for 127.0.0.1 signed by it: (CA PEM, certificate PEM, key PEM).
fn certificates() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "kube-oidc-test-ldap-ca");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = server.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}
