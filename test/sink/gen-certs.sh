#!/bin/sh
# gen-certs.sh DIR: TLS material for the sink tests, made fresh at test time.
#   ca.pem/ca.key          test CA
#   server.pem/server.key  "localhost", SAN DNS:localhost + IP:127.0.0.1, signed by the CA
#   expired.pem/.key       same names, signed by the CA, validity in 2020
#   client.pem/client.key  CN=kps-test-client, clientAuth, signed by the CA
#   wrongca.pem            an unrelated CA (verification must fail with it)
#   wrongclient.pem/.key   CN=kps-wrong-client, clientAuth, signed by wrongca (a collector refuses it)
set -eu
dir=${1:?usage: gen-certs.sh DIR}
rm -rf "$dir"
mkdir -p "$dir/db"
cd "$dir"
: > db/index.txt
echo 1000 > db/serial

cat > openssl.cnf <<'CNF'
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ server_ext ]
basicConstraints = CA:FALSE
subjectAltName = DNS:localhost,IP:127.0.0.1
extendedKeyUsage = serverAuth
[ client_ext ]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
[ ca ]
default_ca = test_ca
[ test_ca ]
database = db/index.txt
new_certs_dir = db
serial = db/serial
default_md = sha256
policy = any_policy
unique_subject = no
[ any_policy ]
commonName = supplied
CNF

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
mkca() { # name cn
  key "$1.key"
  openssl req -config openssl.cnf -x509 -new -key "$1.key" -subj "/CN=$2" -days 3650 \
    -extensions v3_ca -out "$1.pem"
}
csr() { # name cn
  key "$1.key"
  openssl req -config openssl.cnf -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
}
sign() { # name ext [openssl ca date options]; CA=wrongca to sign with the unrelated CA
  n=$1; e=$2; shift 2
  openssl ca -batch -config openssl.cnf -cert "${CA:-ca}.pem" -keyfile "${CA:-ca}.key" -in "$n.csr" -out "$n.pem" \
    -extensions "$e" -notext "$@" 2>/dev/null
}

mkca ca "kps test CA"
mkca wrongca "kps wrong CA"
csr server localhost
sign server server_ext -days 3650
csr expired localhost
sign expired server_ext -startdate 20200101000000Z -enddate 20200201000000Z
csr client kps-test-client
sign client client_ext -days 3650
csr wrongclient kps-wrong-client
CA=wrongca sign wrongclient client_ext -days 3650
rm -f ./*.csr
echo "certificates in $(pwd)"
