// Package loginpage is the HTML of tokend's authorization server: the
// pages' security headers (Headers), and the pages themselves to come.
package loginpage
