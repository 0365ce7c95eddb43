module workflow/plugin

go 1.25
