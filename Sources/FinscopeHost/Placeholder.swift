// Process attribution lives here (issue 4).
