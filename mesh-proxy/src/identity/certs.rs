//! The workload certificate, from Istio's files, reloaded when they change.
//!
//! Istio mounts a workload's credentials as three PEM files in one directory (istio/istio
//! `pkg/security/security.go`): `cert-chain.pem` (the leaf, then its intermediates), `key.pem`
//! and `root-cert.pem`, at `./etc/certs/` (`DefaultCertChainFilePath`, `DefaultKeyFilePath`,
//! `DefaultRootCertFilePath`: "used with external CA managing the certs, i.e. mounted Secret")
//! or `./var/run/secrets/workload-spiffe-credentials/` (`WorkloadIdentityCertChainPath`,
//! `WorkloadIdentityKeyPath`, `WorkloadIdentityRootCertPath`). [`CertFiles`] names them.
//!
//! A version is accepted when the three files parse, the leaf names exactly one SPIFFE id
//! ([`identity_of`]), the key matches the leaf, and the chain verifies up to a certificate of
//! `root-cert.pem` (an expired leaf is still loaded, with a warning: a newer one is what fixes
//! it, and peers refuse it meanwhile).
//!
//! [`CertSource`] polls the files' contents ([`CertSource::watch`] on a tokio interval, or
//! [`CertSource::reload_now`]): a changed, valid version replaces the current one for new
//! connections (established connections keep the certificate they were made with); a changed,
//! invalid one — corrupt PEM, a key of another certificate, a leaf of another root, a
//! half-written rotation — is logged once (`tracing::warn!`), kept as
//! [`CertSource::last_error`], and the last good version stays in use. Contents are compared,
//! not modification times, so a Kubernetes Secret's `..data` symlink swap is seen like an
//! in-place write.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mesh_core::spiffe::SpiffeId;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use super::verify::{IdentityError, identity_of};

/// The certificate chain's file name (`cert-chain.pem`).
pub const CERT_CHAIN_FILE: &str = "cert-chain.pem";
/// The private key's file name (`key.pem`).
pub const KEY_FILE: &str = "key.pem";
/// The root certificates' file name (`root-cert.pem`).
pub const ROOT_CERT_FILE: &str = "root-cert.pem";
/// Where a mounted Secret or an external CA puts them (`DefaultCertChainFilePath` &c.).
pub const ETC_CERTS_DIR: &str = "/etc/certs";
/// The workload identity credentials directory (`WorkloadIdentityCredentialsPath`).
pub const WORKLOAD_SPIFFE_CREDENTIALS_DIR: &str = "/var/run/secrets/workload-spiffe-credentials";

/// The three files of a workload certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// The leaf and its intermediates (`cert-chain.pem`).
    pub cert_chain: PathBuf,
    /// The leaf's private key (`key.pem`: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The roots peers' chains must end in (`root-cert.pem`).
    pub root_cert: PathBuf,
}

impl CertFiles {
    /// Istio's file names in `dir`.
    pub fn in_dir(dir: impl AsRef<Path>) -> CertFiles {
        let dir = dir.as_ref();
        CertFiles {
            cert_chain: dir.join(CERT_CHAIN_FILE),
            key: dir.join(KEY_FILE),
            root_cert: dir.join(ROOT_CERT_FILE),
        }
    }

    /// `/etc/certs/{cert-chain,key,root-cert}.pem`.
    pub fn etc_certs() -> CertFiles {
        CertFiles::in_dir(ETC_CERTS_DIR)
    }

    /// `/var/run/secrets/workload-spiffe-credentials/{cert-chain,key,root-cert}.pem`.
    pub fn workload_spiffe_credentials() -> CertFiles {
        CertFiles::in_dir(WORKLOAD_SPIFFE_CREDENTIALS_DIR)
    }
}

/// Why a version of the workload certificate files was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// A file could not be read.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// A file holds no PEM of the expected kind, or broken PEM.
    #[error("{path}: {what}: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What it should hold (`certificate chain`, `private key`, `root certificates`).
        what: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The leaf does not name one SPIFFE identity.
    #[error("{path}: {source}")]
    Identity {
        /// The certificate chain file.
        path: String,
        /// Why.
        source: IdentityError,
    },
    /// The key is not the leaf's (or cannot be used).
    #[error("{path}: private key does not match {chain}: {message}")]
    KeyMismatch {
        /// The key file.
        path: String,
        /// The certificate chain file.
        chain: String,
        /// rustls' reason.
        message: String,
    },
    /// The chain does not verify up to `root-cert.pem`.
    #[error("{path}: chain does not verify against {roots}: {message}")]
    Chain {
        /// The certificate chain file.
        path: String,
        /// The root certificates file.
        roots: String,
        /// The verifier's reason.
        message: String,
    },
}

/// What [`CertSource::reload_now`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The files have not changed since they were last read.
    Unchanged,
    /// A new version is in use, for this identity.
    Reloaded(SpiffeId),
    /// The files changed but the new version was refused; the last good one stays in use.
    Rejected(CertError),
}

/// One accepted version of the workload certificate.
#[derive(Debug)]
pub struct WorkloadCert {
    identity: SpiffeId,
    certified: Arc<CertifiedKey>,
    roots: Arc<RootCertStore>,
    version: u64,
}

/// Distinguishes versions across every source of the process.
static VERSIONS: AtomicU64 = AtomicU64::new(1);

fn pem_error(path: &str, what: &'static str, message: impl ToString) -> CertError {
    CertError::Pem { path: path.to_string(), what, message: message.to_string() }
}

impl WorkloadCert {
    /// A workload certificate from the contents of the three files (`names` are used in
    /// errors), checked as the module docs say.
    pub fn from_pem(
        cert_chain: &[u8],
        key: &[u8],
        root_cert: &[u8],
        names: &CertFiles,
        provider: &CryptoProvider,
    ) -> Result<WorkloadCert, CertError> {
        let chain_path = names.cert_chain.display().to_string();
        let key_path = names.key.display().to_string();
        let roots_path = names.root_cert.display().to_string();

        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<_, _>>()
            .map_err(|e| pem_error(&chain_path, "certificate chain", e))?;
        let Some(leaf) = chain.first() else {
            return Err(pem_error(&chain_path, "certificate chain", "no PEM certificate"));
        };
        let identity = identity_of(leaf).map_err(|source| CertError::Identity { path: chain_path.clone(), source })?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| pem_error(&key_path, "private key", e))?;

        let mut roots = RootCertStore::empty();
        for root in CertificateDer::pem_slice_iter(root_cert) {
            let root = root.map_err(|e| pem_error(&roots_path, "root certificates", e))?;
            roots.add(root).map_err(|e| pem_error(&roots_path, "root certificates", e))?;
        }
        if roots.is_empty() {
            return Err(pem_error(&roots_path, "root certificates", "no PEM certificate"));
        }

        verify_chain(&chain, &roots, provider).map_err(|message| CertError::Chain {
            path: chain_path.clone(),
            roots: roots_path.clone(),
            message,
        })?;
        let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| CertError::KeyMismatch {
            path: key_path,
            chain: chain_path,
            message: e.to_string(),
        })?;
        Ok(WorkloadCert {
            identity,
            certified: Arc::new(certified),
            roots: Arc::new(roots),
            version: VERSIONS.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The workload's own identity (the leaf's URI SAN).
    pub fn identity(&self) -> &SpiffeId {
        &self.identity
    }

    /// The chain and signing key, as rustls presents them.
    pub fn certified_key(&self) -> &Arc<CertifiedKey> {
        &self.certified
    }

    /// The roots a peer's chain must end in.
    pub fn roots(&self) -> &Arc<RootCertStore> {
        &self.roots
    }

    /// A number that differs for every accepted version (configs built from a version can be
    /// cached by it).
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// Does the chain verify up to `roots`? Signatures are checked at the leaf's `notBefore` when
/// the leaf is outside its validity period now, so an expired leaf of the right root loads.
fn verify_chain(
    chain: &[CertificateDer<'static>],
    roots: &RootCertStore,
    provider: &CryptoProvider,
) -> Result<(), String> {
    let (leaf, intermediates) = chain.split_first().ok_or("empty chain")?;
    let parsed = ParsedCertificate::try_from(leaf).map_err(|e| e.to_string())?;
    let algorithms = provider.signature_verification_algorithms.all;
    let verify =
        |now| rustls::client::verify_server_cert_signed_by_trust_anchor(&parsed, roots, intermediates, now, algorithms);
    match verify(UnixTime::now()) {
        Ok(()) => Ok(()),
        Err(rustls::Error::InvalidCertificate(
            e @ (rustls::CertificateError::Expired
            | rustls::CertificateError::ExpiredContext { .. }
            | rustls::CertificateError::NotValidYet
            | rustls::CertificateError::NotValidYetContext { .. }),
        )) => {
            let issued = x509_parser::parse_x509_certificate(leaf.as_ref())
                .map_err(|e| e.to_string())?
                .1
                .validity()
                .not_before
                .timestamp();
            let issued = u64::try_from(issued).map_err(|_| "notBefore before 1970".to_string())?;
            verify(UnixTime::since_unix_epoch(Duration::from_secs(issued))).map_err(|e| e.to_string())?;
            tracing::warn!(target: "meshwork::identity", error = %e, "workload certificate is outside its validity period");
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// One file's contents as last read, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileState {
    Bytes(Vec<u8>),
    Unreadable(String),
}

fn read(path: &Path) -> FileState {
    std::fs::read(path).map_or_else(|e| FileState::Unreadable(e.to_string()), FileState::Bytes)
}

#[derive(Debug)]
struct State {
    current: Arc<WorkloadCert>,
    /// The contents last looked at (good or bad), so a bad version is reported once.
    seen: [FileState; 3],
    last_error: Option<CertError>,
}

#[derive(Debug)]
struct Inner {
    files: CertFiles,
    provider: Arc<CryptoProvider>,
    state: Mutex<State>,
}

/// The workload certificate from files: the current good version, reloaded on change.
/// Cheap to clone (one shared source).
#[derive(Debug, Clone)]
pub struct CertSource {
    inner: Arc<Inner>,
}

fn build(files: &CertFiles, contents: &[FileState; 3], provider: &CryptoProvider) -> Result<WorkloadCert, CertError> {
    let paths = [&files.cert_chain, &files.key, &files.root_cert];
    let mut bytes: [&[u8]; 3] = [&[], &[], &[]];
    for ((slot, state), path) in bytes.iter_mut().zip(contents).zip(paths) {
        match state {
            FileState::Bytes(b) => *slot = b,
            FileState::Unreadable(message) => {
                return Err(CertError::Read { path: path.display().to_string(), message: message.clone() });
            }
        }
    }
    WorkloadCert::from_pem(bytes[0], bytes[1], bytes[2], files, provider)
}

impl CertSource {
    /// Reads the files; they must hold a good version now.
    pub fn load(files: CertFiles) -> Result<CertSource, CertError> {
        let provider = crate::tls::provider();
        let seen = [read(&files.cert_chain), read(&files.key), read(&files.root_cert)];
        let current = Arc::new(build(&files, &seen, &provider)?);
        tracing::info!(target: "meshwork::identity", identity = %current.identity, "workload certificate loaded");
        let state = Mutex::new(State { current, seen, last_error: None });
        Ok(CertSource { inner: Arc::new(Inner { files, provider, state }) })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave `State` half-updated (each field is replaced whole).
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The files this source reads.
    pub fn files(&self) -> &CertFiles {
        &self.inner.files
    }

    /// The version in use: new connections take it.
    pub fn current(&self) -> Arc<WorkloadCert> {
        self.state().current.clone()
    }

    /// The workload's own identity (of the version in use).
    pub fn identity(&self) -> SpiffeId {
        self.state().current.identity.clone()
    }

    /// Why the files' latest contents were refused, while they stay refused (`None` once a good
    /// version is read again).
    pub fn last_error(&self) -> Option<CertError> {
        self.state().last_error.clone()
    }

    /// The crypto provider configs are built with.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.inner.provider
    }

    /// Reads the files now; a changed version is accepted or reported (see the module docs).
    pub fn reload_now(&self) -> ReloadOutcome {
        let files = &self.inner.files;
        let contents = [read(&files.cert_chain), read(&files.key), read(&files.root_cert)];
        if self.state().seen == contents {
            return ReloadOutcome::Unchanged;
        }
        let built = build(files, &contents, &self.inner.provider);
        let mut state = self.state();
        if state.seen == contents {
            // Another reload got here first.
            return ReloadOutcome::Unchanged;
        }
        state.seen = contents;
        match built {
            Ok(cert) => {
                tracing::info!(target: "meshwork::identity", identity = %cert.identity, "workload certificate reloaded");
                let identity = cert.identity.clone();
                state.current = Arc::new(cert);
                state.last_error = None;
                ReloadOutcome::Reloaded(identity)
            }
            Err(e) => {
                tracing::warn!(
                    target: "meshwork::identity",
                    error = %e,
                    identity = %state.current.identity,
                    "workload certificate files refused; the last good version stays in use"
                );
                state.last_error = Some(e.clone());
                ReloadOutcome::Rejected(e)
            }
        }
    }

    /// Polls the files every `interval` (tokio time: a test can drive it with a paused clock)
    /// and reloads on change. Runs until dropped; spawn it. The three small files are read with
    /// `std::fs` on the task's thread.
    pub async fn watch(self, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            self.reload_now();
        }
    }
}
