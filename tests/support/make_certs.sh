#!/bin/sh
# make_certs.sh DIR: the certificates of the TLS tests (tests/integration/test_tls.c), made
# fresh with the openssl CLI at each run (nothing secret or expiring is committed):
#   ca.pem, ca.key           CA 1
#   server.pem, server.key   a server certificate from CA 1: SAN IP:127.0.0.1, DNS:localhost
#   client.pem, client.key   a client certificate from CA 1 (CN errq-test-client)
#   ca2.pem, ca2.key         CA 2
#   server2.pem, server2.key a server certificate from CA 2 (same SANs)
#   client2.pem, client2.key a client certificate from CA 2
#   client3.pem, client3.key a client certificate from CA 1 with SANs (CN errq-test-client-3,
#                            DNS:svc.errq.test, URI:spiffe://errq.test/svc)
# EC P-256 keys: quick to make, and both OpenSSL (gRPC) and GnuTLS (HTTPS) take them.
set -eu
d=$1
cd "$d"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() { # name cn
	key "$1.key"
	openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 2 -out "$1.pem" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
leaf() { # name ca cn ext
	key "$1.key"
	openssl req -new -key "$1.key" -subj "/CN=$3" -out "$1.csr"
	printf '%s\n' "$4" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 2 \
		-extfile "$1.ext" -out "$1.pem" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
}
SERVER_EXT='subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth'
CLIENT_EXT='extendedKeyUsage=clientAuth'
ca ca "errq test CA 1"
ca ca2 "errq test CA 2"
leaf server ca "errq test server 1" "$SERVER_EXT"
leaf server2 ca2 "errq test server 2" "$SERVER_EXT"
leaf client ca "errq-test-client" "$CLIENT_EXT"
leaf client2 ca2 "errq-test-client-2" "$CLIENT_EXT"
leaf client3 ca "errq-test-client-3" "subjectAltName=DNS:svc.errq.test,URI:spiffe://errq.test/svc
$CLIENT_EXT"
