// Package testcerts makes TLS certificates for tests at run time, so that no key is
// committed: a CA, a server certificate for 127.0.0.1 and "fix.test" and a client
// certificate signed by it, written as PEM files in a directory.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ServerName is the DNS name in the server certificate, beside 127.0.0.1.
const ServerName = "fix.test"

// Set is the PEM files of one CA and the certificates it signed.
type Set struct {
	CA                    string // the CA's certificate
	ServerCert, ServerKey string
	ClientCert, ClientKey string
}

// New writes a fresh Set in dir; name prefixes the files and the CA's common name.
func New(dir, name string) (Set, error) {
	s := Set{
		CA:         filepath.Join(dir, name+"-ca.pem"),
		ServerCert: filepath.Join(dir, name+"-server.pem"), ServerKey: filepath.Join(dir, name+"-server-key.pem"),
		ClientCert: filepath.Join(dir, name+"-client.pem"), ClientKey: filepath.Join(dir, name+"-client-key.pem"),
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return s, err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return s, err
	}
	if err := writePEM(s.CA, "CERTIFICATE", caDER); err != nil {
		return s, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	for i, leaf := range []struct {
		cert, key string
		tmpl      x509.Certificate
	}{
		{s.ServerCert, s.ServerKey, x509.Certificate{Subject: pkix.Name{CommonName: ServerName}, DNSNames: []string{ServerName},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}},
		{s.ClientCert, s.ClientKey, x509.Certificate{Subject: pkix.Name{CommonName: name + " client"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}},
	} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return s, err
		}
		t := leaf.tmpl
		t.SerialNumber = big.NewInt(int64(2 + i))
		t.NotBefore, t.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		t.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, &t, caCert, &key.PublicKey, caKey)
		if err != nil {
			return s, err
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return s, err
		}
		if err := writePEM(leaf.cert, "CERTIFICATE", der); err != nil {
			return s, err
		}
		if err := writePEM(leaf.key, "EC PRIVATE KEY", kb); err != nil {
			return s, err
		}
	}
	return s, nil
}

func writePEM(path, typ string, der []byte) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("testcerts: %w", err)
	}
	return nil
}
