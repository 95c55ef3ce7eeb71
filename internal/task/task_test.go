package task

import (
	"context"
	"testing"

	"github.com/google/uuid"
)

func TestOrdering(t *testing.T) {
	tests := []struct {
		ordering   Ordering
		valid      bool
		descending bool
	}{
		{"created_at", true, false},
		{"-created_at", true, true},
		{"title", true, false},
		{"-title", true, true},
		{"", false, false},
		{"-", false, true},
		{"completed", false, false},
		{"-updated_at", false, true},
		{"Title", false, false},
		{"title ", false, false},
		{"--title", false, true},
		{"owner_id", false, false},
		{"created_at; DROP TABLE tasks", false, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.ordering), func(t *testing.T) {
			if got := tt.ordering.Valid(); got != tt.valid {
				t.Errorf("Ordering(%q).Valid() = %v, want %v", tt.ordering, got, tt.valid)
			}
			if got := tt.ordering.Descending(); got != tt.descending {
				t.Errorf("Ordering(%q).Descending() = %v, want %v", tt.ordering, got, tt.descending)
			}
		})
	}
}

func TestIdentityHasScope(t *testing.T) {
	tests := []struct {
		name   string
		scopes []string
		scope  string
		want   bool
	}{
		{"user token, read", nil, ScopeTasksRead, true},
		{"user token, write", nil, ScopeTasksWrite, true},
		{"read-only key, read", []string{ScopeTasksRead}, ScopeTasksRead, true},
		{"read-only key, write", []string{ScopeTasksRead}, ScopeTasksWrite, false},
		{"key without scopes, read", []string{}, ScopeTasksRead, false},
		{"full key, write", AllScopes, ScopeTasksWrite, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := &Identity{UserID: uuid.New(), Scopes: tt.scopes}
			if got := id.HasScope(tt.scope); got != tt.want {
				t.Fatalf("HasScope(%q) with scopes %q = %v, want %v", tt.scope, tt.scopes, got, tt.want)
			}
		})
	}
}

func TestIdentityContext(t *testing.T) {
	if got := IdentityFromContext(context.Background()); got != nil {
		t.Fatalf("IdentityFromContext(empty) = %+v, want nil (anonymous)", got)
	}
	id := &Identity{UserID: uuid.New(), Scheme: SchemeBearer}
	ctx := NewContextWithIdentity(context.Background(), id)
	if got := IdentityFromContext(ctx); got != id {
		t.Fatalf("IdentityFromContext = %+v, want %+v", got, id)
	}
	type foreignKey struct{}
	if got := IdentityFromContext(context.WithValue(context.Background(), foreignKey{}, id)); got != nil {
		t.Fatalf("IdentityFromContext found an identity under a foreign key: %+v", got)
	}
}
