package bus_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
)

// tlsTimeout bounds the server's TLS handshake; the default 2 s is tight
// under the race detector on a loaded machine.
const tlsTimeout = 10 // seconds

// TestConnectTLS joins a server that requires TLS, verifying the server
// with ConnectOptions.TLSCA, and one that also requires a client
// certificate (mutual TLS), presenting TLSCert and TLSKey. Without the CA,
// or without a client certificate where one is required, the connection
// is refused.
func TestConnectTLS(t *testing.T) {
	pki := newPKI(t)
	tlsOnly := newTLSServer(t, pki, false)
	mutual := newTLSServer(t, pki, true)
	tests := []struct {
		name    string
		server  *server.Server
		opts    bus.ConnectOptions
		natsURL bool   // a nats:// URL, which the client upgrades when the server asks
		wantErr string // "" for success, else a regexp the error text matches
	}{
		{
			name:   "server verified by the CA",
			server: tlsOnly,
			opts:   bus.ConnectOptions{TLSCA: pki.ca},
		},
		{
			name:    "nats url upgraded to TLS",
			server:  tlsOnly,
			opts:    bus.ConnectOptions{TLSCA: pki.ca},
			natsURL: true,
		},
		{
			name:    "no CA",
			server:  tlsOnly,
			wantErr: "certificate signed by unknown authority",
		},
		{
			name:   "mutual TLS",
			server: mutual,
			opts:   bus.ConnectOptions{TLSCA: pki.ca, TLSCert: pki.clientCert, TLSKey: pki.clientKey},
		},
		{
			name:   "mutual TLS without a client certificate",
			server: mutual,
			opts:   bus.ConnectOptions{TLSCA: pki.ca},
			// With TLS 1.3 the client finishes its handshake before the
			// server checks the certificate, so the client sees either
			// the server's alert or the connection it then closes.
			wantErr: "certificate required|closed by remote after TLS handshake",
		},
		{
			name:    "mutual TLS without the CA",
			server:  mutual,
			opts:    bus.ConnectOptions{TLSCert: pki.clientCert, TLSKey: pki.clientKey},
			wantErr: "certificate signed by unknown authority",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.URLs = tt.server.ClientURL() // tls://127.0.0.1:port
			if tt.natsURL {
				tt.opts.URLs = "nats://" + tt.server.Addr().String()
			}
			tt.opts.ConnectTimeout = wait
			nc, err := connect(t, tt.opts)
			if tt.wantErr == "" {
				require.NoError(t, err)
				state, err := nc.TLSConnectionState()
				require.NoError(t, err, "connection uses TLS")
				require.NotEmpty(t, state.VerifiedChains, "server certificate verified")
				assert.Equal(t, "server", state.PeerCertificates[0].Subject.CommonName)
				roundTrip(t, nc)
				return
			}
			require.Error(t, err)
			t.Logf("error: %v", err)
			assert.Regexp(t, tt.wantErr, err.Error())
		})
	}
}

// newTLSServer starts a server that requires TLS with pki's server
// certificate and, when mutual, a client certificate signed by pki's CA.
func newTLSServer(t *testing.T, pki testPKI, mutual bool) *server.Server {
	t.Helper()
	tc := &server.TLSConfigOpts{CertFile: pki.serverCert, KeyFile: pki.serverKey, Timeout: tlsTimeout}
	if mutual {
		tc.CaFile, tc.Verify = pki.ca, true
	}
	conf, err := server.GenTLSConfig(tc)
	require.NoError(t, err)
	return bustest.NewServerWith(t, server.Options{TLSConfig: conf, TLSVerify: mutual, TLSTimeout: tlsTimeout})
}

// testPKI holds the PEM files of a test CA, a server certificate for
// 127.0.0.1 and a client certificate, both signed by the CA.
type testPKI struct {
	ca                    string
	serverCert, serverKey string
	clientCert, clientKey string
}

// newPKI makes a CA and its two leaf certificates, ECDSA P-256, valid for
// an hour, and writes them under t.TempDir().
func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caKey := newECKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bus test CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	leaf := func(serial int64, name string, usage x509.ExtKeyUsage, ips []net.IP) (certFile, keyFile string) {
		key := newECKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    now.Add(-time.Minute),
			NotAfter:     now.Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		require.NoError(t, err)
		certFile = writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
		keyFile = writePEM(t, filepath.Join(dir, name+"-key.pem"), "PRIVATE KEY", keyDER)
		return certFile, keyFile
	}
	var p testPKI
	p.ca = writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER)
	p.serverCert, p.serverKey = leaf(2, "server", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.clientCert, p.clientKey = leaf(3, "client", x509.ExtKeyUsageClientAuth, nil)
	return p
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return key
}

// writePEM writes der as one PEM block of type typ to path and returns path.
func writePEM(t *testing.T, path, typ string, der []byte) string {
	t.Helper()
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}
