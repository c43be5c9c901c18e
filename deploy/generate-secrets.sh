#!/bin/sh
# Makes the secret files deploy/compose.yaml mounts: deploy/generate-secrets.sh [FOLDER]
# (default: deploy/secrets). Needs a Python 3 with its standard library only; PYTHON picks one.
# Files that exist are kept: a new sealing, checkpoint or encryption key would leave data made
# under the old one unreadable or unverifiable, and a new database password would no longer
# match the one postgres was initialised with.
set -eu

dir=${1:-$(dirname "$0")/secrets}
python=${PYTHON:-python3}

umask 077
mkdir -p "$dir"
# Compose bind-mounts secret files with their host permissions, and the containers run as
# other users (10001, postgres' 999): the files are readable to all, the folder to its owner.
chmod 700 "$dir"

# new_secret NAME EXPRESSION [ARGUMENT...]: write the expression's value to NAME if absent.
new_secret() {
    name=$1
    expression=$2
    shift 2
    if [ -s "$dir/$name" ]; then
        echo "kept      $name"
    else
        "$python" -c "import base64, secrets, sys; sys.stdout.write($expression)" "$@" \
            > "$dir/$name.new"
        mv "$dir/$name.new" "$dir/$name"
        echo "generated $name"
    fi
    chmod 644 "$dir/$name"
}

token='secrets.token_urlsafe(32)'
new_secret postgres_password "$token"
new_secret auth_jwt_secret "$token"
new_secret ledger_beneficiary_key "$token"
new_secret ledger_sealing_key "$token"
# The base64 of a 32-byte Ed25519 seed.
new_secret ledger_checkpoint_key 'base64.b64encode(secrets.token_bytes(32)).decode()'
# A Fernet key, as cryptography's Fernet.generate_key() makes them.
new_secret notifier_encryption_key 'base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()'

# A database URL carries its role's password, so it is a secret too, made from that password.
for service in catalog ledger notifier; do
    new_secret "${service}_db_password" "$token"
    new_secret "${service}_database_url" \
        "f'postgresql://{sys.argv[1]}:{open(sys.argv[2]).read().strip()}@postgres:5432/{sys.argv[1]}'" \
        "$service" "$dir/${service}_db_password"
done
