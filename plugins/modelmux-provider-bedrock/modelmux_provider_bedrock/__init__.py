"""AWS Bedrock provider for ModelMux: Converse and ConverseStream, SigV4 via botocore."""
