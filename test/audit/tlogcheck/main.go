// Command tlogcheck is the independent side of Portcullis's Merkle-tree tests: it answers
// tree-hash, inclusion-proof and consistency-proof questions with Go's
// golang.org/x/mod/sumdb/tlog (RFC 6962 trees, the same hashing as RFC 9162 §2.1) and
// checks proofs produced by the TypeScript implementation with tlog's CheckRecord/CheckTree.
//
// Input (stdin, JSON):
//
//	{"entries": ["<base64 leaf entry>", ...],
//	 "queries": [{"op": "tree", "n": 5},
//	             {"op": "record", "i": 2, "n": 5, "proof": ["<base64>", ...]},
//	             {"op": "consistency", "m": 3, "n": 5, "proof": [...]}]}
//
// Output (stdout, JSON): {"stored": ["<base64>", ...] (every stored hash, tlog order),
// "answers": [{"root": ..., "proof": [...], "check": "ok" | "<error>"}, ...]}; "check" is
// tlog's verdict on the proof the caller sent (against tlog's own roots).
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/tlog"
)

type query struct {
	Op    string   `json:"op"`
	I     int64    `json:"i"`
	M     int64    `json:"m"`
	N     int64    `json:"n"`
	Proof []string `json:"proof"`
}

type answer struct {
	Root  string   `json:"root,omitempty"`
	Proof []string `json:"proof,omitempty"`
	Check string   `json:"check,omitempty"`
	Error string   `json:"error,omitempty"`
}

func b64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

func decode(ss []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(ss))
	for i, s := range ss {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			return nil, fmt.Errorf("bad hash %q", s)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

func main() {
	var in struct {
		Entries []string `json:"entries"`
		Queries []query  `json:"queries"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "tlogcheck:", err)
		os.Exit(2)
	}
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(stored)) {
				return nil, fmt.Errorf("hash index %d out of range", x)
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	for n, e := range in.Entries {
		data, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			fmt.Fprintln(os.Stderr, "tlogcheck: entry", n, err)
			os.Exit(2)
		}
		hs, err := tlog.StoredHashes(int64(n), data, reader)
		if err != nil {
			fmt.Fprintln(os.Stderr, "tlogcheck:", err)
			os.Exit(2)
		}
		stored = append(stored, hs...)
	}
	answers := make([]answer, 0, len(in.Queries))
	for _, q := range in.Queries {
		var a answer
		switch q.Op {
		case "tree":
			h, err := tlog.TreeHash(q.N, reader)
			if err != nil {
				a.Error = err.Error()
			} else {
				a.Root = b64(h)
			}
		case "record":
			p, err := tlog.ProveRecord(q.N, q.I, reader)
			if err != nil {
				a.Error = err.Error()
				break
			}
			for _, h := range p {
				a.Proof = append(a.Proof, b64(h))
			}
			th, _ := tlog.TreeHash(q.N, reader)
			leaf, _ := reader.ReadHashes([]int64{tlog.StoredHashIndex(0, q.I)})
			theirs, err := decode(q.Proof)
			if err == nil {
				err = tlog.CheckRecord(theirs, q.N, th, q.I, leaf[0])
			}
			a.Check = verdict(err)
		case "consistency":
			p, err := tlog.ProveTree(q.N, q.M, reader)
			if err != nil {
				a.Error = err.Error()
				break
			}
			for _, h := range p {
				a.Proof = append(a.Proof, b64(h))
			}
			tn, _ := tlog.TreeHash(q.N, reader)
			tm, _ := tlog.TreeHash(q.M, reader)
			theirs, err := decode(q.Proof)
			if err == nil {
				err = tlog.CheckTree(theirs, q.N, tn, q.M, tm)
			}
			a.Check = verdict(err)
		default:
			a.Error = "unknown op " + q.Op
		}
		answers = append(answers, a)
	}
	out := struct {
		Stored  []string `json:"stored"`
		Answers []answer `json:"answers"`
	}{Answers: answers}
	for _, h := range stored {
		out.Stored = append(out.Stored, b64(h))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "tlogcheck:", err)
		os.Exit(2)
	}
}

func verdict(err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok"
}
