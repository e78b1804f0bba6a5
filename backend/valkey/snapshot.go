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
// (empty for the current kid), secret_1, revoked_1 ('1' or empty), ...}, so
// parseKeys decodes it. A revoked kid (r:<kid>, docs/spec.md §8.7) is
// listed without a secret, which the store no longer holds, so that a
// cached Engine answers its tokens token_expired.
const keysSnapshotLua = `
local ks, err = ff_keystore()
if err then return err end
local now = ff_now()
local current = ks.current or ''
local out = {now, current, 0}
for f, v in pairs(ks) do
  local tag = string.sub(f, 1, 2)
  if (tag == 's:' and not ks['r:' .. string.sub(f, 3)]) or tag == 'r:' then
    local kid = string.sub(f, 3)
    local exp = ''
    if kid ~= current then exp = ks['x:' .. kid] or '' end
    out[#out + 1] = kid
    out[#out + 1] = exp
    if tag == 'r:' then
      out[#out + 1] = ''
      out[#out + 1] = '1'
    else
      out[#out + 1] = v
      out[#out + 1] = ''
    end
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
	return withPrelude(string(prelude) + "\n" + keysSnapshotLua)
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
