package valkey

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// The scripts order index members and claim heads by bytes, as the sorted
// sets do, whatever collation the server runs under (Lua's < uses the
// server's strcoll): ff_before answers byte order for pairs a collation
// such as en_US.UTF-8 orders otherwise (punctuation, case, bytes above
// 0x7f, prefixes).
func TestScriptsCompareMembersByBytes(t *testing.T) {
	b := standalone(t, 1, nil)
	s := redis.NewScript(mustRead("lua/prelude.lua") + "\nreturn {ff_before(ARGV[2], ARGV[3]) and 1 or 0}")
	pairs := [][2]string{
		{"a-c", "ab"}, {"ab", "a-c"}, {"aB", "ab"}, {"ab", "aB"}, {"a_b", "a.b"},
		{"00000000001700000000:x-1", "00000000001700000000:x1"},
		{"00000000001700000000:Z", "00000000001700000000:a"},
		{"é", "f"}, {"f", "é"}, {"ab", "abc"}, {"abc", "ab"}, {"ab", "ab"}, {"", "a"},
	}
	for _, p := range pairs {
		v, err := b.run(context.Background(), s, 0, p[0], p[1])
		require.NoError(t, err, "%q < %q", p[0], p[1])
		want := int64(0)
		if p[0] < p[1] {
			want = 1
		}
		require.Equal(t, []any{want}, v, "ff_before(%q, %q)", p[0], p[1])
	}
}
