package main

import "testing"

func TestWantTTY(t *testing.T) {
	for _, c := range []struct {
		noTTY, tty, stdinTerm, stdoutTerm bool
		want                              bool
	}{
		{stdinTerm: true, stdoutTerm: true, want: true}, // berth run web sh
		{stdinTerm: true},  // berth run web ls | less
		{stdoutTerm: true}, // echo hi | berth run web cat
		{noTTY: true, stdinTerm: true, stdoutTerm: true},            // -T
		{tty: true, want: true},                                     // -t in a script
		{noTTY: true, tty: true, stdinTerm: true, stdoutTerm: true}, // -T wins
	} {
		if got := wantTTY(c.noTTY, c.tty, c.stdinTerm, c.stdoutTerm); got != c.want {
			t.Errorf("wantTTY(-T=%v, -t=%v, stdin terminal %v, stdout terminal %v) = %v, want %v",
				c.noTTY, c.tty, c.stdinTerm, c.stdoutTerm, got, c.want)
		}
	}
}
