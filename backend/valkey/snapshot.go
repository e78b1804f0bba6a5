package valkey

import (
	"context"

	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/redis/go-redis/v9"
)

var _ driver.KeystoreSnapshotter = (*Backend)(nil)

// keysSnapshotLua reads one partition's whole keystore, every kid's secret
// included, and the server clock, atomically and without writing. Its reply
// has keys_load's shape: {now, current kid (empty: none), n, kid_1, expires_1
// (empty for the current kid), secret_1, ...}, so parseKeys decodes it.
const keysSnapshotLua = `
local err = ff_partitions()
if err then return err end
local now = ff_now()
local current = redis.call('HGET', KS, 'current') or ''
local out = {now, current, 0}
local all = redis.call('HGETALL', KS)
for i = 1, #all, 2 do
  local f = all[i]
  if string.sub(f, 1, 2) == 's:' then
    local kid = string.sub(f, 3)
    local exp = ''
    if kid ~= current then exp = redis.call('HGET', KS, 'x:' .. kid) or '' end
    out[#out + 1] = kid
    out[#out + 1] = exp
    out[#out + 1] = all[i + 1]
    out[3] = out[3] + 1
  end
end
return out
`

// scriptKeysSnapshot is keysSnapshotLua behind the driver's prelude.
var scriptKeysSnapshot = func() *redis.Script {
	prelude, err := luaFiles.ReadFile("lua/prelude.lua")
	if err != nil {
		panic("valkey: missing lua/prelude.lua")
	}
	return redis.NewScript(string(prelude) + "\n" + keysSnapshotLua)
}()

// KeystoreSnapshot reads partition's keystore and the server's clock (TIME)
// in one script call, for the Engine's keystore cache, which adds the
// monotonic time elapsed since to decide expiry at the server's clock.
func (b *Backend) KeystoreSnapshot(ctx context.Context, partition int) (driver.KeystoreSnapshot, error) {
	v, err := b.run(ctx, scriptKeysSnapshot, partition)
	if err != nil {
		return driver.KeystoreSnapshot{}, err
	}
	lk, err := parseKeys(v)
	if err != nil {
		return driver.KeystoreSnapshot{}, interpretError(err)
	}
	// Kids already past their grace keep no secret: their tokens are
	// token_expired, and they may be sealed under a KEK dropped since.
	if err := openKeys(b.keyring(), partition, &lk.keys, lk.nowMs); err != nil {
		return driver.KeystoreSnapshot{}, err
	}
	return driver.KeystoreSnapshot{Keys: lk.keys, NowMs: lk.nowMs, Partitions: b.parts}, nil
}
