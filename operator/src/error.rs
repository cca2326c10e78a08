//! The operator's error type.

/// Why a reconcile failed; each maps to a stable label for metrics and Events.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API call failed ({0}): {1}")]
    Kube(&'static str, #[source] kube::Error),
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// Wraps a kube error with what was being done.
    pub fn kube(what: &'static str) -> impl FnOnce(kube::Error) -> Error {
        move |e| Error::Kube(what, e)
    }

    /// A stable label for metrics and Events.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_, kube::Error::Api(s)) if s.code == 409 => "Conflict",
            Error::Kube(..) => "ApiError",
            Error::KeyGeneration(_) => "KeyGenerationFailed",
            Error::Internal(_) => "Internal",
        }
    }
}
