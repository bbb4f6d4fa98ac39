package cpgo

// Follows connect-plugin-go's validation.go: the limits and checks the
// registry applies to RegisterService and the handshake to self_id.

import (
	"fmt"
	"regexp"
	"strings"
)

const (
	MaxMetadataEntries  = 100
	MaxMetadataKeyLen   = 256
	MaxMetadataValueLen = 4096
	MaxServiceTypeLen   = 128
	MaxSelfIDLen        = 128
	MaxVersionLen       = 64
)

var (
	// validKeyPattern: metadata keys, service types and self ids.
	validKeyPattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.\-]*$`)
	// validVersionPattern: "1.0.0", "2.1.3-beta", "3.0.0-rc.1" (no build
	// metadata: "1.0.0+x" is refused).
	validVersionPattern = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[a-zA-Z0-9.-]+)?$`)
)

// ValidateMetadata: at most 100 entries, keys 1..256 bytes matching
// validKeyPattern, values at most 4096 bytes, no NUL. Map order decides
// which bad entry is reported first.
func ValidateMetadata(metadata map[string]string) error {
	if len(metadata) > MaxMetadataEntries {
		return fmt.Errorf("too many metadata entries: %d (max: %d)", len(metadata), MaxMetadataEntries)
	}
	for key, value := range metadata {
		if key == "" {
			return fmt.Errorf("metadata key cannot be empty")
		}
		if len(key) > MaxMetadataKeyLen {
			return fmt.Errorf("metadata key too long: %d bytes (max: %d)", len(key), MaxMetadataKeyLen)
		}
		if !validKeyPattern.MatchString(key) {
			return fmt.Errorf("metadata key %q contains invalid characters (must match: %s)", key, validKeyPattern.String())
		}
		if len(value) > MaxMetadataValueLen {
			return fmt.Errorf("metadata value for key %q too long: %d bytes (max: %d)", key, len(value), MaxMetadataValueLen)
		}
		if strings.Contains(key, "\x00") || strings.Contains(value, "\x00") {
			return fmt.Errorf("metadata contains null bytes (potential injection)")
		}
	}
	return nil
}

// ValidateServiceType: 1..128 bytes matching validKeyPattern (which already
// excludes "/" and "\\"; ".." is refused separately, so "a..b" fails).
func ValidateServiceType(serviceType string) error {
	if serviceType == "" {
		return fmt.Errorf("service type cannot be empty")
	}
	if len(serviceType) > MaxServiceTypeLen {
		return fmt.Errorf("service type too long: %d bytes (max: %d)", len(serviceType), MaxServiceTypeLen)
	}
	if !validKeyPattern.MatchString(serviceType) {
		return fmt.Errorf("service type %q contains invalid characters (must match: %s)", serviceType, validKeyPattern.String())
	}
	if strings.Contains(serviceType, "..") || strings.Contains(serviceType, "/") || strings.Contains(serviceType, "\\") {
		return fmt.Errorf("service type contains path traversal characters: %s", serviceType)
	}
	if strings.Contains(serviceType, "\x00") {
		return fmt.Errorf("service type contains null bytes")
	}
	return nil
}

// ValidateSelfID: 1..128 bytes matching validKeyPattern.
func ValidateSelfID(selfID string) error {
	if selfID == "" {
		return fmt.Errorf("self_id cannot be empty")
	}
	if len(selfID) > MaxSelfIDLen {
		return fmt.Errorf("self_id too long: %d bytes (max: %d)", len(selfID), MaxSelfIDLen)
	}
	if !validKeyPattern.MatchString(selfID) {
		return fmt.Errorf("self_id %q contains invalid characters (must match: %s)", selfID, validKeyPattern.String())
	}
	if strings.Contains(selfID, "\x00") {
		return fmt.Errorf("self_id contains null bytes")
	}
	return nil
}

// ValidateVersion: 1..64 bytes, MAJOR.MINOR.PATCH with an optional
// pre-release.
func ValidateVersion(version string) error {
	if version == "" {
		return fmt.Errorf("version cannot be empty")
	}
	if len(version) > MaxVersionLen {
		return fmt.Errorf("version too long: %d bytes (max: %d)", len(version), MaxVersionLen)
	}
	if !validVersionPattern.MatchString(version) {
		return fmt.Errorf("version %q must be semantic version (e.g., 1.0.0, 2.1.3-beta)", version)
	}
	if strings.Contains(version, "\x00") {
		return fmt.Errorf("version contains null bytes")
	}
	return nil
}

// ValidateEndpointPath: starts with "/", at most 256 bytes, no NUL. Nothing
// else: "/../x" and "/a?b" are accepted (the router glues it to base_url).
func ValidateEndpointPath(path string) error {
	if path == "" {
		return fmt.Errorf("endpoint path cannot be empty")
	}
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("endpoint path must start with /: %s", path)
	}
	if len(path) > 256 {
		return fmt.Errorf("endpoint path too long: %d bytes (max: 256)", len(path))
	}
	if strings.Contains(path, "\x00") {
		return fmt.Errorf("endpoint path contains null bytes")
	}
	return nil
}
