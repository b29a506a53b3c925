package pluginwire

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"google.golang.org/protobuf/proto"
)

// Direct connections (see Direct in plugin/proto) carry runs without gRPC. What they save
// is not bytes or syscalls but hand-overs between goroutines: on a gRPC stream a run's
// request and result each pass through an HTTP/2 writer goroutine, a reader goroutine and
// a stream goroutine on either side, and waking a goroutine on another thread costs
// ~40µs on a 2-vCPU virtual machine (measured: an echo over a TLS unix socket takes
// ~35µs when the reading goroutine answers itself, ~75µs with one hand-over per round
// trip, ~125µs with two). So a direct connection carries one run at a time: the host's
// caller writes the request and reads the result itself, and the plugin runs the handler
// on the goroutine that read the request. Cancellation, which that goroutine cannot read
// while the handler runs, travels over gRPC (CancelDirect); it is rare.

// maxFrame bounds one message on a direct connection: gRPC's default limit, so that a run
// that fits one path fits the other.
const maxFrame = 4 << 20

// errTooLarge is a message over maxFrame; nothing was written.
var errTooLarge = errors.New("message larger than the limit of 4 MiB")

// encodeFrame encodes m as one frame: a 4-byte big-endian length, then m.
func encodeFrame(m proto.Message) ([]byte, error) {
	size := proto.Size(m)
	if size > maxFrame {
		return nil, fmt.Errorf("%T of %d bytes: %w", m, size, errTooLarge)
	}
	b := make([]byte, 4, 4+size)
	b, err := proto.MarshalOptions{}.MarshalAppend(b, m)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", m, err)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b, nil
}

// writeFrame writes m as one frame, in one Write.
func writeFrame(w io.Writer, m proto.Message) error {
	b, err := encodeFrame(m)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// readFrame reads one frame into m.
func readFrame(r io.Reader, m proto.Message) error {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxFrame {
		return fmt.Errorf("frame of %d bytes, more than the limit of %d", size, maxFrame)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("frame of %d bytes: %w", size, err)
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("decode %T: %w", m, err)
	}
	return nil
}

// newCertificate returns a fresh self-signed certificate for one end of the direct
// connections of one plugin process. Nothing checks its names or dates: the other end
// pins its exact bytes, which it received over go-plugin's authenticated connection.
func newCertificate() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate serial: %w", err)
	}
	now := time.Now()
	tpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "cronfleet plugin direct connection"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(100, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// errNotPinned refuses a peer whose certificate is not the one exchanged over go-plugin's
// connection.
var errNotPinned = errors.New("pluginwire: direct connection: the peer's certificate is not the one exchanged over the plugin connection")

// pinned returns a tls.Config.VerifyPeerCertificate that accepts only the certificate der.
func pinned(der []byte) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 || !bytes.Equal(raw[0], der) {
			return errNotPinned
		}
		return nil
	}
}
