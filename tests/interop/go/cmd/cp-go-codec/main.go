// cp-go-codec: the Go half of the byte-level cross-check (binary and
// proto3 JSON) for every message of connectplugin.v1,
// connectplugin.health.v1 and kv.v1.
//
//	cp-go-codec list        print the full names of the messages
//	cp-go-codec emit DIR    write DIR/<name>.go.bin and DIR/<name>.go.json
//	cp-go-codec check DIR   decode DIR/<name>.c.bin and DIR/<name>.c.json
//	                        (written by the C side) and compare them with
//	                        the filled message; one line per message and format
//
// Every message is filled by the same rule as the C side's
// (tests/interop/go/test-go-codec.c), field by field from its descriptor:
// string  "<field>-ü-<number>"; int32 ±(number*100003) (negative for odd
// numbers); bool true; bytes {ff 00 <number> 80 fe}; enum its highest
// value; message filled recursively; repeated string "<field>-0",
// "<field>-1-ü"; repeated message two filled messages; map<string,string>
// {"<field>-a": "1", "<field>-b-ü": "two"}.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	_ "cpinterop/gen/cpv1"
	_ "cpinterop/gen/healthv1"
	_ "cpinterop/gen/kvv1"
)

func scalar(fd protoreflect.FieldDescriptor) protoreflect.Value {
	n := int32(fd.Number())
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(fmt.Sprintf("%s-ü-%d", fd.Name(), n))
	case protoreflect.Int32Kind:
		v := n * 100003
		if n%2 == 1 {
			v = -v
		}
		return protoreflect.ValueOfInt32(v)
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{0xff, 0x00, byte(n), 0x80, 0xfe})
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		max := vals.Get(0).Number()
		for i := 0; i < vals.Len(); i++ {
			if vals.Get(i).Number() > max {
				max = vals.Get(i).Number()
			}
		}
		return protoreflect.ValueOfEnum(max)
	}
	panic(fmt.Sprintf("field %s: kind %v not in the fill rule", fd.FullName(), fd.Kind()))
}

func fill(m protoreflect.Message) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		switch {
		case fd.IsMap():
			if fd.MapKey().Kind() != protoreflect.StringKind || fd.MapValue().Kind() != protoreflect.StringKind {
				panic("only map<string,string> in the fill rule")
			}
			mp := m.Mutable(fd).Map()
			mp.Set(protoreflect.ValueOfString(string(fd.Name())+"-a").MapKey(), protoreflect.ValueOfString("1"))
			mp.Set(protoreflect.ValueOfString(string(fd.Name())+"-b-ü").MapKey(), protoreflect.ValueOfString("two"))
		case fd.IsList():
			l := m.Mutable(fd).List()
			if fd.Kind() == protoreflect.MessageKind {
				for j := 0; j < 2; j++ {
					e := l.NewElement()
					fill(e.Message())
					l.Append(e)
				}
			} else if fd.Kind() == protoreflect.StringKind {
				l.Append(protoreflect.ValueOfString(string(fd.Name()) + "-0"))
				l.Append(protoreflect.ValueOfString(string(fd.Name()) + "-1-ü"))
			} else {
				panic("only repeated string and message in the fill rule")
			}
		case fd.Kind() == protoreflect.MessageKind:
			fill(m.Mutable(fd).Message())
		default:
			m.Set(fd, scalar(fd))
		}
	}
}

func messages() []protoreflect.MessageDescriptor {
	var out []protoreflect.MessageDescriptor
	for _, pkg := range []protoreflect.FullName{"connectplugin.v1", "connectplugin.health.v1", "kv.v1"} {
		protoregistry.GlobalFiles.RangeFilesByPackage(pkg, func(f protoreflect.FileDescriptor) bool {
			for i := 0; i < f.Messages().Len(); i++ {
				out = append(out, f.Messages().Get(i))
			}
			return true
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FullName() < out[j].FullName() })
	return out
}

func filled(md protoreflect.MessageDescriptor) proto.Message {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
	var m protoreflect.Message
	if err == nil {
		m = mt.New()
	} else {
		m = dynamicpb.NewMessage(md)
	}
	fill(m)
	return m.Interface()
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cp-go-codec list | emit DIR | check DIR")
		os.Exit(2)
	}
	failed := 0
	switch os.Args[1] {
	case "list":
		for _, md := range messages() {
			fmt.Println(md.FullName())
		}
	case "emit":
		dir := os.Args[2]
		for _, md := range messages() {
			m := filled(md)
			b, err := proto.Marshal(m)
			if err != nil {
				panic(err)
			}
			j, err := protojson.Marshal(m)
			if err != nil {
				panic(err)
			}
			os.WriteFile(filepath.Join(dir, string(md.FullName())+".go.bin"), b, 0o644)
			os.WriteFile(filepath.Join(dir, string(md.FullName())+".go.json"), j, 0o644)
		}
	case "check":
		dir := os.Args[2]
		for _, md := range messages() {
			want := filled(md)
			for _, format := range []string{"bin", "json"} {
				path := filepath.Join(dir, string(md.FullName())+".c."+format)
				err := func() error {
					data, err := os.ReadFile(path)
					if err != nil {
						return err
					}
					got := want.ProtoReflect().New().Interface()
					if format == "bin" {
						err = proto.Unmarshal(data, got)
					} else {
						err = protojson.Unmarshal(data, got)
					}
					if err != nil {
						return fmt.Errorf("decode: %v", err)
					}
					if !proto.Equal(got, want) {
						return fmt.Errorf("decoded %v, want %v", got, want)
					}
					if format == "bin" && len(data) == 0 && md.Fields().Len() > 0 {
						return fmt.Errorf("empty encoding")
					}
					return nil
				}()
				if err != nil {
					failed++
					fmt.Printf("FAIL C→Go %-4s %s: %v\n", format, md.FullName(), err)
				} else {
					fmt.Printf("ok   C→Go %-4s %s\n", format, md.FullName())
				}
			}
		}
		if failed > 0 {
			os.Exit(1)
		}
	default:
		os.Exit(2)
	}
}
