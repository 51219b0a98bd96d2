// Package sealed encrypts a store's secrets at rest under an operator key:
// Wrap(st, ring) is a store.Store that seals the private part of every
// signing key (store.Key.Private) and the value of every server secret
// (store.Store.Secret) with AES-256-GCM before they reach st, and opens
// them as they come back. Seal, Unseal and Inspect migrate a store in one
// atomic store.Store.RewriteSecrets: seal it, reseal it under a new key,
// or turn encryption off.
//
// Each value is sealed with a random 96-bit nonce, under additional data
// that binds it to its record ("key" and the kid, or "secret" and the
// secret's name): a value copied into another record does not open. A
// sealed value starts with "tks1" and the ID of the operator key that
// sealed it, so that a Keyring of the current key and older ones opens
// values sealed under any of them, and a value in clear is recognised.
//
// # For operators
//
// Without an operator key, anyone who can read tokend.db (a backup, a copy
// of the volume) can sign access tokens that every resource server
// accepts, and, holding any refresh token of a family, even an old one,
// compute the later ones without tripping reuse detection. Encryption at
// rest closes both: the database then holds the signing keys and the
// successor secret only sealed under a 32-byte key kept outside it.
//
// Enable it:
//
//	tokend encryption keygen --out /etc/tokend/key   # mode 0600; prints the key ID
//	tokend encryption seal --key-file /etc/tokend/key
//
// then (re)start every server with the key: --encryption-key-file FILE,
// TOKEND_ENCRYPTION_KEY_FILE, encryption_key_file in the config file, or
// the key itself in base64 in TOKEND_ENCRYPTION_KEY. The admin commands
// (keys, client, user, families) take the same --encryption-key-file or
// variables. A key file that its group or others may access is refused,
// as ssh refuses such a private key. Servers that run without the key
// while the store is sealed keep serving with the keys they have loaded
// (their reads of the keys fail with store.ErrUnreadable, and they read
// each key's state from the store under this wrapper, so a revocation
// still holds on them at once) and log a warning at each reload; restart
// them with the key soon, and do not run "tokend keys rotate" in between:
// a key they never held cannot sign on them. (Or stop the servers, seal,
// and start them with the key.)
//
// A server with a key refuses to start on a store that holds a value in
// clear (ErrClear): a key or secret written by a process without the key,
// or planted by someone who can write the database but has not got the
// key. "tokend encryption seal" seals such values; "tokend encryption
// status" lists every value and the key it is sealed under. A server
// without a key refuses a sealed store with an error naming the key ID it
// needs (ErrUnknownKey), and so does a server whose keyring lacks that
// key. Errors and logs name operator keys by ID (8 hex digits: base64 -d
// FILE | sha256sum | cut -c1-8), never by their bytes.
//
// Rotate the key (the old one leaked, or by policy):
//
//  1. tokend encryption keygen --out /etc/tokend/key.new
//  2. Restart every server with the new key as the key and the old one as
//     the old key: --encryption-key-file key.new --encryption-old-key-file
//     key (or TOKEND_ENCRYPTION_OLD_KEY_FILE, TOKEND_ENCRYPTION_OLD_KEY).
//     They open values sealed under either and seal new ones under the new
//     key.
//  3. tokend encryption rotate --key-file key.new --old-key-file key: every
//     value is resealed under the new key in one atomic step; a failure
//     changes nothing.
//  4. Restart the servers with the new key alone, and destroy the old one
//     (and the backups made with it, if it leaked: a backup holds the
//     values sealed under the key of its day).
//
// During step 2 a server not yet restarted cannot open a value sealed
// under the new key; do not rotate signing keys until every server has
// both. (A fleet that must never see that window restarts twice: first
// with the old key as the key and the new one as the old key, then the
// other way round.)
//
// Turn encryption off: restart the servers with the key as the old key
// only (--encryption-old-key-file), run "tokend encryption unseal
// --old-key-file FILE", then restart them without any key.
//
// # What is left on disk
//
// Seal, Unseal and a rotation overwrite each value in place, and a
// database keeps overwritten values in its files until they are
// rewritten: the values in clear after a seal, those sealed under the old
// key after a rotation (as good as clear once that key leaks). How much a
// store can promise depends on who owns its files:
//
//   - SQLite (store.Scrubber): after each of them, and after "tokend
//     secrets retire", the tokend commands call Scrub, which rewrites the
//     database from its live rows (VACUUM) and truncates the -wal file
//     (the -shm holds no row): then no file of the store holds an old
//     value, byte for byte, even with servers running on it. A server
//     whose read pins the -wal longer than --wait is reported (exit 1,
//     the files named); "tokend encryption scrub" finishes later.
//   - PostgreSQL: the old row versions stay in the table files until
//     VACUUM reuses their space ("VACUUM FULL keys, secrets" rewrites the
//     two small tables at once), and in the WAL, its archives, replicas
//     and base backups, which tokend cannot reach.
//   - Redis: the AOF keeps every write until it is rewritten
//     (BGREWRITEAOF), and RDB snapshots, replicas and backups keep the
//     values of their day.
//
// No store reaches backups, filesystem snapshots or freed disk blocks. So
// treat every copy made before sealing as holding the values in clear,
// and make those values worthless: rotate the signing keys ("tokend keys
// rotate"; once the new key signs, "tokend keys revoke" the old one, so
// that nothing it signs is accepted) and the server secret ("tokend
// secrets rotate", then "tokend secrets retire", package secrets). Neither
// logs anyone out; retire ends only the families still on the old secret,
// and says how many. "tokend encryption seal" says so when it found values
// in clear.
//
// What the key protects: the signing keys' private parts and the server
// secrets, against whoever reads the database or its backups but not the
// key. What it does not: refresh tokens and client secrets are stored only
// as hashes anyway, and password hashes are slow hashes; client, user,
// family and key records (who exists, which key is active or revoked) are
// neither secret nor authenticated, so someone who can write the database
// can still create a client, revoke a family or change which key signs,
// though no longer plant a private key or a secret of their own. The key
// does not help against someone who can read the server's memory, its
// environment or the key file.
package sealed
