//! HTTPS for the emulator (`serve --tls`): a certificate for the vendor's host names, made at
//! start or read from files, so that a run can reach an emulator under `cvm.tencentcloudapi.com`
//! (with `--resolve` and `--ca-cert`) exactly as it reaches the real host — the simulated cloud.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

/// A server certificate and the acceptor that presents it.
#[derive(Clone)]
pub struct Tls {
    /// Presents the certificate on each accepted connection.
    pub acceptor: TlsAcceptor,
    /// The certificate, PEM (what a client passes to `--ca-cert`).
    pub cert_pem: String,
}

/// A self-signed certificate for `names` (host names or IP addresses), made now.
pub fn generate(names: &[String]) -> Result<Tls, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
    let params = rcgen::CertificateParams::new(names.to_vec())
        .map_err(|e| format!("cannot make a certificate for {names:?}: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("cannot sign a certificate: {e}"))?;
    let cert_pem = cert.pem();
    acceptor(cert_pem, key.serialize_pem())
}

/// The certificate (PEM, its chain) and private key (PEM) in these files.
pub fn from_files(cert: &Path, key: &Path) -> Result<Tls, String> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    acceptor(read(cert)?, read(key)?)
}

fn acceptor(cert_pem: String, key_pem: String) -> Result<Tls, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the certificate is not PEM: {e}"))?;
    if chain.is_empty() {
        return Err("the certificate file holds no CERTIFICATE block".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("the key is not a PEM private key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key do not go together: {e}"))?;
    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        cert_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_names_the_hosts_and_is_pem() {
        let tls = generate(&["cvm.tencentcloudapi.com".into(), "127.0.0.1".into()]).unwrap();
        assert!(tls.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        // reqwest takes it as a root, as `--ca-cert` does.
        reqwest::Certificate::from_pem(tls.cert_pem.as_bytes()).unwrap();
    }

    #[test]
    fn a_key_that_is_not_pem_is_refused_with_the_reason() {
        let cert = generate(&["localhost".into()]).unwrap().cert_pem;
        let err = acceptor(cert, "not a key".into()).err().unwrap();
        assert!(err.contains("not a PEM private key"), "{err}");
    }
}
