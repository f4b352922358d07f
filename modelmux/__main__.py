from modelmux.cli import main

main()
