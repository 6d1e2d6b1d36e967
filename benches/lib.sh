# Shared by the benchmark scripts (source it): a free loopback port, and the
# configuration every benchmarked server has.

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# server_config DIR HOSTNAME SMTP SUBMISSION SUBMISSIONS IMAPS IMAP
# Prints the keys for a loopback server keeping everything (data, Maildirs,
# queue, cert.pem/key.pem, accounts, pid file, control socket) under DIR;
# a port of 0 disables that listener. Append run-specific keys after it.
server_config() {
    cat <<CONF
EMAIL_LISTEN_ADDR=127.0.0.1
EMAIL_HOSTNAME=$2
EMAIL_DOMAIN=a.test
EMAIL_SMTP_PORT=$3
EMAIL_SUBMISSION_PORT=$4
EMAIL_SUBMISSIONS_PORT=$5
EMAIL_IMAP_PORT=$6
EMAIL_IMAP_STARTTLS_PORT=$7
EMAIL_DATA_DIR=$1/data
EMAIL_MAILDIR=$1/mail
EMAIL_QUEUE_DIR=$1/queue
EMAIL_TLS_CERT=$1/cert.pem
EMAIL_TLS_KEY=$1/key.pem
EMAIL_ACCOUNTS_FILE=$1/accounts
EMAIL_PID_FILE=$1/sx.pid
EMAIL_CONTROL_SOCKET=$1/control.sock
EMAIL_SUBMIT_SOCKET=$1/submit.sock
EMAIL_MAILDROP_DIR=$1/maildrop
EMAIL_DOMAINS_FILE=$1/domains
EMAIL_LOG=stderr
CONF
}
