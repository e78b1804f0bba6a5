package testenv

import (
	"errors"
	"strings"
	"testing"
)

func TestMissingServer(t *testing.T) {
	dockerErr := errors.New("no docker socket")
	t.Run("OutsideCISkipsNamingTheVariable", func(t *testing.T) {
		action, msg := missingServer(EnvPostgresURL, false, dockerErr)
		if action != actionSkip {
			t.Fatalf("action = %v, want skip", action)
		}
		for _, want := range []string{EnvPostgresURL, "no docker socket"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not mention %q", msg, want)
			}
		}
	})
	t.Run("UnderCIFails", func(t *testing.T) {
		action, msg := missingServer(EnvValkeyClusterURL, true, errNoDockerFallback)
		if action != actionFail {
			t.Fatalf("action = %v, want fail", action)
		}
		for _, want := range []string{EnvValkeyClusterURL, "CI=true"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not mention %q", msg, want)
			}
		}
	})
}

func TestInCI(t *testing.T) {
	for value, want := range map[string]bool{
		"": false, "false": false, "0": false, "yes": false,
		"true": true, "TRUE": true, "1": true,
	} {
		t.Setenv("CI", value)
		if got := InCI(); got != want {
			t.Errorf("CI=%q: InCI() = %v, want %v", value, got, want)
		}
	}
}
