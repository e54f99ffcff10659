return Vae.Cli.VaeCommand.Run(args);
