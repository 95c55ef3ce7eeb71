package httpapi

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"

	"github.com/acme/taskmanager/internal/task"
)

// validate checks request structs against their `validate` tags. Field
// errors are reported under the JSON names clients sent.
var validate = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	must(v.RegisterValidation("title", func(fl validator.FieldLevel) bool { return task.ValidTitle(fl.Field().String()) }))
	must(v.RegisterValidation("text", func(fl validator.FieldLevel) bool {
		s := fl.Field().String()
		return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
	}))
	// username is the whole rule of a new username; username_max only its
	// length, which bounds what a login looks up.
	must(v.RegisterValidation("username", func(fl validator.FieldLevel) bool { return task.ValidUsername(fl.Field().String()) }))
	v.RegisterAlias("username_max", fmt.Sprintf("max=%d", task.MaxUsernameLen))
	v.RegisterAlias("passkey_answer", fmt.Sprintf("max=%d", maxPasskeyAnswer))
	return v
}()

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// check validates v (only the named fields, when given) and returns the
// failures as one validation error.
func check(v any, fields ...string) error {
	var err error
	if len(fields) > 0 {
		err = validate.StructPartial(v, fields...)
	} else {
		err = validate.Struct(v)
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return err
	}
	out := task.Invalid(map[string][]string{})
	for _, fe := range verrs {
		// An element's error ("scopes[0]") belongs to its field.
		name, _, _ := strings.Cut(fe.Field(), "[")
		out.Fields[name] = append(out.Fields[name], message(fe))
	}
	return out
}

func message(fe validator.FieldError) string {
	name, _, _ := strings.Cut(fe.Field(), "[")
	label := strings.ToUpper(name[:1]) + strings.ReplaceAll(name[1:], "_", " ")
	switch fe.ActualTag() { // an alias's own name is in Tag
	case "required":
		return "This field is required."
	case "min":
		if fe.Kind() == reflect.Slice {
			return fmt.Sprintf("%s must hold at least %s item(s).", label, fe.Param())
		}
		return fmt.Sprintf("%s must be at least %s characters long.", label, fe.Param())
	case "max":
		if fe.Kind() == reflect.Slice {
			return fmt.Sprintf("%s may hold at most %s items.", label, fe.Param())
		}
		return fmt.Sprintf("%s must be at most %s characters long.", label, fe.Param())
	case "title":
		return "Title may contain only letters, digits and spaces."
	case "text":
		return "Must be text without NUL characters."
	case "username":
		s, _ := fe.Value().(string)
		return task.UsernameProblem(s)
	case "email":
		return "Enter a valid email address."
	case "oneof":
		return fmt.Sprintf("Must be one of: %s.", strings.ReplaceAll(fe.Param(), " ", ", "))
	case "unique":
		return "Values must not repeat."
	}
	return "This value is not valid."
}

// merge combines validation errors; any other error wins.
func merge(errs ...error) error {
	var out *task.Error
	for _, err := range errs {
		if err == nil {
			continue
		}
		var e *task.Error
		if !errors.As(err, &e) || e.Code != task.EINVALID {
			return err
		}
		if out == nil {
			out = task.Invalid(map[string][]string{})
		}
		for k, v := range e.Fields {
			out.Fields[k] = append(out.Fields[k], v...)
		}
	}
	if out == nil {
		return nil
	}
	return out
}
