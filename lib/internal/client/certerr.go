package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// CertHint ends the message of a certificate verification failure.
const CertHint = "the relay's TLS certificate cannot be verified; if a private CA signed it, give that CA with --ca-file"

// IsCertError reports whether err is a TLS certificate verification
// failure (unknown authority, wrong host name, expired or unusable
// certificate). Retrying cannot fix one, so the clients stop at once
// instead of retrying as after a network failure.
func IsCertError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		host     x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		unknownP *x509.UnknownAuthorityError
		hostP    *x509.HostnameError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host) ||
		errors.As(err, &invalid) || errors.As(err, &unknownP) || errors.As(err, &hostP)
}
